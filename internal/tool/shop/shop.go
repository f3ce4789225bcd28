// Package shop is the online shop of abmesh's demo and evaluation, in one
// place: its manifests (layers.yaml and experiments.yaml, which `abmesh
// apply -f` reads and `abmesh demo` applies), its service call graph, and
// its ground truth (who its users are and what its tests really do).
// `abmesh demo` runs it as a real mesh (internal/tool/demo) and `abmesh
// evaluate` simulates it (internal/tool/sim); both take everything from here.
package shop

import (
	"embed"

	"github.com/abmesh/abmesh/internal/adapter/manifest"
	"github.com/abmesh/abmesh/tracing"
)

//go:embed layers.yaml experiments.yaml
var manifests embed.FS

// Dir is where the manifests are in the repository, for messages and
// documentation: `abmesh apply -f internal/tool/shop/layers.yaml -f
// internal/tool/shop/experiments.yaml`.
const Dir = "internal/tool/shop"

// Manifest parses the shop's manifests, layers.yaml then
// experiments.yaml, into one Set: the layer checkout-flow and seven
// experiments (as drafts, in file order). Every call parses afresh, so
// callers may change what they get.
func Manifest() (*manifest.Set, error) {
	all := &manifest.Set{}
	for _, name := range []string{"layers.yaml", "experiments.yaml"} {
		b, err := manifests.ReadFile(name)
		if err != nil {
			return nil, err
		}
		s, err := manifest.Parse(Dir+"/"+name, b)
		if err != nil {
			return nil, err
		}
		all.Merge(s)
	}
	return all, nil
}

// Graph returns the shop's service dependency graph, with call counts
// per 1,000 page views:
//
//	frontend       → productcatalog, recommendation, cart, ad, currency, checkout
//	checkout       → payment, shipping, email, currency, cart
//	recommendation → productcatalog
//
// The frontend calls checkout only for the page views that check out.
func Graph() []tracing.Edge {
	return []tracing.Edge{
		{Caller: "frontend", Callee: "productcatalog", Calls: 1000},
		{Caller: "frontend", Callee: "recommendation", Calls: 800},
		{Caller: "frontend", Callee: "cart", Calls: 600},
		{Caller: "frontend", Callee: "ad", Calls: 900},
		{Caller: "frontend", Callee: "currency", Calls: 1000},
		{Caller: "frontend", Callee: "checkout", Calls: 200},
		{Caller: "checkout", Callee: "payment", Calls: 200},
		{Caller: "checkout", Callee: "shipping", Calls: 200},
		{Caller: "checkout", Callee: "email", Calls: 200},
		{Caller: "checkout", Callee: "currency", Calls: 200},
		{Caller: "checkout", Callee: "cart", Calls: 200},
		{Caller: "recommendation", Callee: "productcatalog", Calls: 800},
	}
}

// Calls returns every service of Graph with the services it calls, in
// Graph's order; a service that calls nothing maps to nil.
func Calls() map[string][]string {
	calls := map[string][]string{}
	for _, e := range Graph() {
		calls[e.Caller] = append(calls[e.Caller], e.Callee)
		if _, ok := calls[e.Callee]; !ok {
			calls[e.Callee] = nil
		}
	}
	return calls
}
