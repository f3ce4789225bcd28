package testkit

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WriteFuzzSeed writes one seed input of the fuzz target fuzzer, the
// values its fuzz function takes in order, into pkgDir's
// testdata/fuzz/FUZZER directory in the "go test fuzz v1" format, named
// as go test names what it finds (the first 16 hex digits of the
// content's SHA-256), so that writing the same seed again changes
// nothing. Values may be []byte, string, bool, int, int64, uint32 and
// uint64. It returns the file's path.
func WriteFuzzSeed(pkgDir, fuzzer string, values ...any) (string, error) {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch x := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(x)))
		case string:
			fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(x))
		case bool, int, int64, uint32, uint64:
			fmt.Fprintf(&b, "%T(%v)\n", x, x)
		default:
			return "", fmt.Errorf("fuzz seed of %s: unsupported value type %T", fuzzer, v)
		}
	}
	data := []byte(b.String())
	dir := filepath.Join(pkgDir, "testdata", "fuzz", fuzzer)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%x", sha256.Sum256(data))[:16])
	return path, os.WriteFile(path, data, 0o644)
}
