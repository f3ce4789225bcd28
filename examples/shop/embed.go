// Package shop embeds the shop example's manifests: the experiments and
// the layer that `abmesh demo` applies and that the README walks through.
package shop

import "embed"

// Manifests holds layers.yaml and experiments.yaml.
//
//go:embed *.yaml
var Manifests embed.FS
