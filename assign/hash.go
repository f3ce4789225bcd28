package assign

import "github.com/cespare/xxhash/v2"

// Hash is the assignment hash of unit under salt: the 64-bit xxHash
// (XXH64, seed 0) of the UTF-8 bytes of salt, a slash and unit:
//
//	h64 = XXH64(salt + "/" + unit, seed 0)
//
// An experiment hashes with its salt (Experiment.Salt, or its ID when the
// salt is empty); a layer hashes with its ID. The function is fixed: the
// golden vectors in testdata/hash_vectors.json pin it for every SDK, and a
// change to it is a breaking change of the wire contract. Hash does not
// allocate.
func Hash(salt, unit string) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(salt)
	_, _ = d.WriteString("/")
	_, _ = d.WriteString(unit)
	return d.Sum64()
}

// Bucket maps a hash h to one of total integer buckets, [0, total), with
// flagd's integer bucketing of the high 32 bits of h:
//
//	h32    = h >> 32
//	bucket = (h32 * total) >> 32
//
// The result is floor(f * total) for the fraction point f = h32 / 2^32 in
// [0, 1), so buckets are as even as 32 bits allow, and a unit's fraction
// point does not depend on total: resizing keeps the order of units. Bucket
// returns 0 when total is 0.
func Bucket(h uint64, total uint32) uint32 {
	return uint32(((h >> 32) * uint64(total)) >> 32)
}

// HashBucket is Bucket(Hash(salt, unit), total).
func HashBucket(salt, unit string, total uint32) uint32 {
	return Bucket(Hash(salt, unit), total)
}

// LayerBucket is the bucket of unit in layer: HashBucket(layer, unit,
// LayerBuckets), in [0, LayerBuckets). An experiment of the layer sees the
// unit when its Slice contains this bucket.
func LayerBucket(layer, unit string) uint32 {
	return HashBucket(layer, unit, LayerBuckets)
}

// prefixDigest returns a digest that has consumed salt + "/", ready to be
// copied and fed a unit: copying it saves re-hashing the salt per call.
func prefixDigest(salt string) xxhash.Digest {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(salt)
	_, _ = d.WriteString("/")
	return d
}

// sum finishes a copy of the prefix digest p with unit.
func sum(p *xxhash.Digest, unit string) uint64 {
	d := *p
	_, _ = d.WriteString(unit)
	return d.Sum64()
}
