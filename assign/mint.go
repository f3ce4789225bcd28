package assign

import (
	"crypto/rand"
	"encoding/hex"
)

// MintedPrefix starts every unit id abmesh mints (MintUnit).
const MintedPrefix = "u-"

// mintedLen is the length of a minted id: MintedPrefix and 32 hex digits.
const mintedLen = len(MintedPrefix) + 32

// MintUnit returns a fresh random unit id for an anonymous user or device:
// MintedPrefix and 32 lowercase hex digits (128 random bits). abmeshd
// mints one for Assign's mint_unit and for forward-auth requests that carry
// no unit; the caller keeps it (a cookie) and sends it back.
func MintUnit() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return MintedPrefix + hex.EncodeToString(b[:])
}

// Minted reports whether unit has the form of a minted id (MintUnit).
//
// A minted id is an anonymous claim that the client holds and sends back
// (a cookie it can edit), never proof of who it is: it is never a trusted
// claim for an override. So Registry.SetOverride refuses a minted-form
// unit, and Compile ignores overrides of minted-form units that a store
// written before that rule may still hold. A service that wants to pin one
// person pins the id of an authenticated user instead.
func Minted(unit string) bool {
	if len(unit) != mintedLen || unit[:len(MintedPrefix)] != MintedPrefix {
		return false
	}
	for i := len(MintedPrefix); i < len(unit); i++ {
		if c := unit[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
