package tokenfile_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ambient-code/tokend/tokenfile"
)

// oauth2Token has the fields of golang.org/x/oauth2's Token that a bearer
// token file can fill. In a program that imports oauth2, use *oauth2.Token.
type oauth2Token struct {
	AccessToken string
	TokenType   string
	Expiry      time.Time
}

// tokenSource adapts a Watcher to oauth2.TokenSource: its Token method has
// the signature that interface asks for, and returns the Watcher's current
// token on every call.
type tokenSource struct{ w *tokenfile.Watcher }

func (s tokenSource) Token() (*oauth2Token, error) {
	cur := s.w.Current()
	if !cur.HasToken() {
		return nil, fmt.Errorf("token source: %w", cur.Err)
	}
	return &oauth2Token{AccessToken: cur.Token, TokenType: "Bearer", Expiry: cur.Expiry}, nil
}

// Code written against golang.org/x/oauth2 takes a TokenSource. A Watcher
// adapts to one in a few lines, shown here with a stand-in for oauth2.Token
// so that tokenfile does not depend on oauth2 (see the package doc). Give
// the source to &oauth2.Transport{Source: src} directly: oauth2.NewClient
// and oauth2.ReuseTokenSource would keep a token until its expiry (forever,
// for a token without one) and miss the rotations the file brings.
func Example_tokenSource() {
	dir, _ := os.MkdirTemp("", "tokenfile-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "token")
	_ = os.WriteFile(path, []byte("example-token-1\n"), 0o600)

	w, err := tokenfile.New(path)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	if _, err := w.Wait(ctx); err != nil {
		log.Fatal(err)
	}

	src := tokenSource{w} // in a real program: var src oauth2.TokenSource = ...
	tok, err := src.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, fingerprint(tok.AccessToken), "expires:", !tok.Expiry.IsZero())
	// Output:
	// Bearer 4e864cc9d096 expires: false
}
