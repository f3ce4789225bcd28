package daemon

import (
	"reflect"
	"testing"
)

// TestDefaultsFillFromDefaultConfig: a zero Config, once defaulted, is
// DefaultConfig, and a set field is left as it is.
func TestDefaultsFillFromDefaultConfig(t *testing.T) {
	var c Config
	c.defaults()
	if want := DefaultConfig(); !reflect.DeepEqual(c, want) {
		t.Errorf("zero Config after defaults:\n%+v\nwant DefaultConfig:\n%+v", c, want)
	}
	c = Config{Listen: "127.0.0.1:1", SubsetCap: 2}
	c.defaults()
	if c.Listen != "127.0.0.1:1" || c.SubsetCap != 2 || c.OTLPListen != DefaultConfig().OTLPListen {
		t.Errorf("defaults changed set fields or skipped unset ones: %+v", c)
	}
}
