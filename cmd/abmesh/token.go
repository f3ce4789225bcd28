package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/abmesh/abmesh/internal/auth"
)

// tokenNewCmd prints a fresh token and the --auth-file line that grants
// it ROLES under NAME. Only the line goes into the file: abmeshd keeps
// no token, only its hash.
func tokenNewCmd(fs *flag.FlagSet) body {
	return func(_ context.Context, r *request) error {
		if err := r.want(2, "NAME ROLES"); err != nil {
			return err
		}
		name := r.args[0]
		if strings.ContainsFunc(name, func(c rune) bool { return c <= ' ' || c == '#' || c > '~' }) {
			return usageErrorf("NAME %q: want printable ASCII without spaces or #", name)
		}
		roles, err := auth.ParseRoles(r.args[1])
		if err != nil {
			return usageErrorf("ROLES: %v", err)
		}
		tok := auth.NewToken()
		fmt.Fprintf(r.stdout, "token: %s\n", tok)
		fmt.Fprintf(r.stdout, "auth file line: %s", auth.TokenLine(name, roles, tok))
		return nil
	}
}

// tokenHashCmd prints a token's hash as the auth file spells it.
func tokenHashCmd(fs *flag.FlagSet) body {
	return func(_ context.Context, r *request) error {
		var tok string
		switch len(r.args) {
		case 0:
			sc := bufio.NewScanner(r.stdin)
			if !sc.Scan() {
				return errors.Join(errors.New("token hash: no token on stdin"), sc.Err())
			}
			tok = strings.TrimSpace(sc.Text())
		case 1:
			tok = r.args[0]
		default:
			return usageErrorf("want at most one TOKEN")
		}
		if tok == "" {
			return errors.New("token hash: the token is empty")
		}
		fmt.Fprintln(r.stdout, auth.HashToken(tok))
		return nil
	}
}
