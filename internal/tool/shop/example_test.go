package shop_test

import (
	"fmt"

	"github.com/abmesh/abmesh/internal/tool/shop"
)

// The truth of the shop's frontend order value: rec-model's ml-v2 pays off
// only in ui-layout's two-column page.
func ExampleTruths() {
	frontend := shop.Truths()[0]
	for _, ui := range []string{"control", "two-column"} {
		off := frontend.Mean(map[string]string{"ui-layout": ui})
		on := frontend.Mean(map[string]string{"ui-layout": ui, "rec-model": "ml-v2"})
		fmt.Printf("ui-layout=%s: rec-model effect %+.0f\n", ui, on-off)
	}
	// Output:
	// ui-layout=control: rec-model effect +1
	// ui-layout=two-column: rec-model effect +15
}
