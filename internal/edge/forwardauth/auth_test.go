package forwardauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/abmesh/abmesh/assign"
)

// get sends one request to the endpoint and returns the recorded answer.
func get(h http.Handler, target string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMintsCookieAndAssignsTheServicesTests(t *testing.T) {
	f := newFixture(t, Config{})
	h := NewHandler(f.auth)
	w := get(h, "/edge/v1/assign?service=shop", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	unit := w.Header().Get(UnitHeader)
	if !assign.Minted(unit) {
		t.Fatalf("x-abmesh-unit = %q, want a minted id", unit)
	}
	for _, test := range []string{"checkout", "banner"} {
		if got, want := w.Header().Get(assign.HeaderName(test)), f.variant(t, test, unit); got != want {
			t.Errorf("%s = %q, want %q", assign.HeaderName(test), got, want)
		}
	}
	if got := w.Header().Get(assign.HeaderName("elsewhere")); got != "" {
		t.Errorf("another service's test answered: %q", got)
	}
	want := "abmesh_unit=" + unit + "; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax"
	if got := w.Header().Get("Set-Cookie"); got != want {
		t.Errorf("Set-Cookie = %q, want %q", got, want)
	}
	// The browser's cookie as net/http reads it.
	c := w.Result().Cookies()
	if len(c) != 1 || c[0].Value != unit || c[0].MaxAge != 31536000 || !c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode || c[0].Secure {
		t.Errorf("cookie = %+v", c)
	}
}

func TestCookieIsTheUnitOnTheNextRequest(t *testing.T) {
	f := newFixture(t, Config{UnitCookie: "uid"})
	h := NewHandler(f.auth)
	unit := assign.MintUnit()
	w := get(h, "/?service=shop", map[string]string{"Cookie": `a=b; uid="` + unit + `"; c=d`})
	if w.Code != http.StatusOK || w.Header().Get(UnitHeader) != unit {
		t.Fatalf("status %d, unit %q, want %q", w.Code, w.Header().Get(UnitHeader), unit)
	}
	if sc := w.Header().Get("Set-Cookie"); sc != "" {
		t.Errorf("Set-Cookie %q for a request that has its unit", sc)
	}
	if got, want := w.Header().Get("x-abmesh-checkout"), f.variant(t, "checkout", unit); got != want {
		t.Errorf("checkout = %q, want %q", got, want)
	}
}

func TestSecureCookieBehindHTTPS(t *testing.T) {
	h := NewHandler(newFixture(t, Config{}).auth)
	for proto, secure := range map[string]bool{"https": true, "HTTPS, http": true, "http": false, "": false} {
		sc := get(h, "/", map[string]string{"X-Forwarded-Proto": proto}).Header().Get("Set-Cookie")
		if strings.HasSuffix(sc, "; Secure") != secure {
			t.Errorf("X-Forwarded-Proto %q: Set-Cookie %q, want Secure %v", proto, sc, secure)
		}
	}
}

// TestServiceSources: the service header wins over the query parameter;
// with neither, every running test is assigned; any path and method.
func TestServiceSources(t *testing.T) {
	h := NewHandler(newFixture(t, Config{ServiceHeader: "X-Svc"}).auth)
	for _, tt := range []struct {
		method, target, header string
		want, notWant          []string
	}{
		{"GET", "/edge/v1/assign?service=shop", "", []string{"checkout", "banner"}, []string{"elsewhere"}},
		{"GET", "/edge/v1/assign?x=1&service=oth%65r", "", []string{"elsewhere"}, []string{"checkout"}},
		{"POST", "/any/original/path?service=other", "shop", []string{"checkout"}, []string{"elsewhere"}},
		{"HEAD", "/", "", []string{"checkout", "banner", "elsewhere"}, nil},
		{"GET", "/?service=nobody", "", nil, []string{"checkout", "elsewhere"}},
	} {
		r := httptest.NewRequest(tt.method, tt.target, nil)
		if tt.header != "" {
			r.Header.Set("x-svc", tt.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK || w.Header().Get(UnitHeader) == "" {
			t.Errorf("%s %s: status %d, unit %q", tt.method, tt.target, w.Code, w.Header().Get(UnitHeader))
		}
		for _, test := range tt.want {
			if w.Header().Get(assign.HeaderName(test)) == "" {
				t.Errorf("%s %s (header %q): no %s", tt.method, tt.target, tt.header, test)
			}
		}
		for _, test := range tt.notWant {
			if v := w.Header().Get(assign.HeaderName(test)); v != "" {
				t.Errorf("%s %s (header %q): %s = %q, want none", tt.method, tt.target, tt.header, test, v)
			}
		}
	}
}

// TestTrust: overrides apply to a unit from the trusted header; a cookie
// claiming the same unit is not taken (a fresh id is minted), and a minted
// id never gets an override.
func TestTrust(t *testing.T) {
	f := newFixture(t, Config{UnitHeader: "X-User"})
	ctx := t.Context()
	const user = "user-7"
	pinned := "treatment"
	if f.variant(t, "checkout", user) == "treatment" {
		pinned = "control"
	}
	if err := f.reg.SetOverride(ctx, assign.Override{Experiment: "checkout", Unit: user, Variant: pinned}); err != nil {
		t.Fatal(err)
	}
	h := NewHandler(f.auth)

	w := get(h, "/?service=shop", map[string]string{"X-User": user, "Cookie": "abmesh_unit=" + assign.MintUnit()})
	if w.Header().Get(UnitHeader) != user || w.Header().Get("x-abmesh-checkout") != pinned || w.Header().Get("Set-Cookie") != "" {
		t.Errorf("trusted header: unit %q checkout %q set-cookie %q, want %q pinned to %q and no cookie",
			w.Header().Get(UnitHeader), w.Header().Get("x-abmesh-checkout"), w.Header().Get("Set-Cookie"), user, pinned)
	}

	w = get(h, "/?service=shop", map[string]string{"Cookie": "abmesh_unit=" + user})
	if u := w.Header().Get(UnitHeader); u == user || !assign.Minted(u) || !strings.HasPrefix(w.Header().Get("Set-Cookie"), "abmesh_unit="+u+";") {
		t.Errorf("cookie claiming %q: unit %q, Set-Cookie %q; want a fresh minted unit and its cookie", user, u, w.Header().Get("Set-Cookie"))
	}

	minted := assign.MintUnit()
	if err := f.reg.SetOverride(ctx, assign.Override{Experiment: "checkout", Unit: minted, Variant: pinned}); !errors.Is(err, assign.ErrInvalid) {
		t.Errorf("override of a minted id: %v, want ErrInvalid", err)
	}
}

// TestBadInput: a unit over the limit, with a control or bidirectional
// formatting character or not UTF-8, from the header or the cookie, and a
// service over the limit, are 400 with the reason, and nothing is routed
// on them.
func TestBadInput(t *testing.T) {
	h := NewHandler(newFixture(t, Config{UnitHeader: "x-user"}).auth)
	long := strings.Repeat("a", assign.MaxUnitLen+1)
	for _, tt := range []struct {
		name   string
		header map[string]string
		target string
		reason string
	}{
		{"long header unit", map[string]string{"X-User": long}, "/", "unit in header x-user: 257 bytes, over the limit of 256"},
		{"long cookie unit", map[string]string{"Cookie": "abmesh_unit=" + long}, "/", "unit in cookie abmesh_unit: 257 bytes, over the limit of 256"},
		{"tab in header unit", map[string]string{"X-User": "a\tb"}, "/", "unit in header x-user: control character '\\t' at byte 1"},
		{"newline in header unit", map[string]string{"X-User": "a\nb"}, "/", "control character '\\n' at byte 1"},
		{"DEL in cookie unit", map[string]string{"Cookie": "abmesh_unit=ab\x7f"}, "/", "unit in cookie abmesh_unit: control character '\\x7f' at byte 2"},
		{"NUL in cookie unit", map[string]string{"Cookie": "x=1; abmesh_unit=\x00"}, "/", "control character '\\x00' at byte 0"},
		{"not UTF-8", map[string]string{"X-User": "caf\xe9"}, "/", "unit in header x-user: not valid UTF-8 at byte 3"},
		{"bidi override in header unit", map[string]string{"X-User": "a\u202eb"}, "/", "unit in header x-user: formatting character"},
		{"long service", nil, "/?service=" + strings.Repeat("s", 257), "service: 257 bytes, over the limit of 256"},
	} {
		w := get(h, tt.target, tt.header)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tt.name, w.Code)
		}
		if !strings.Contains(w.Body.String(), tt.reason) {
			t.Errorf("%s: body %q, want the reason %q", tt.name, w.Body, tt.reason)
		}
		for k := range w.Header() {
			if strings.HasPrefix(strings.ToLower(k), assign.HeaderPrefix) || k == "Set-Cookie" {
				t.Errorf("%s: answered header %s on bad input", tt.name, k)
			}
		}
	}
}

func TestCookieValue(t *testing.T) {
	for _, tt := range []struct {
		hs   []string
		want string
	}{
		{[]string{"u=1"}, "1"},
		{[]string{"a=1; u=2"}, "2"},
		{[]string{"a=1;u=2;u=3"}, "2"},
		{[]string{"a=1", "u=\"q\" "}, "q"},
		{[]string{"uu=1; u"}, ""},
		{[]string{"u="}, ""},
		{nil, ""},
	} {
		if got := cookieValue(tt.hs, "u"); got != tt.want {
			t.Errorf("cookieValue(%q) = %q, want %q", tt.hs, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	for _, c := range []Config{{UnitCookie: "a b"}, {UnitHeader: "x:y"}, {ServiceHeader: "x\ny"}} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestHealthz: the health check path answers without minting a unit.
func TestHealthz(t *testing.T) {
	h := NewHandler(newFixture(t, Config{}).auth)
	w := get(h, HealthPath, nil)
	if w.Code != http.StatusOK || w.Body.String() != "ok\n" || w.Header().Get(UnitHeader) != "" || w.Header().Get("Set-Cookie") != "" {
		t.Errorf("%s: %d %q %v", HealthPath, w.Code, w.Body, w.Header())
	}
}
