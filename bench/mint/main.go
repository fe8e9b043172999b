// Command mint gets N client_credentials access tokens from the e2e IdP, with C requests in
// flight, and prints them one per line. The benchmark uses them as "a new valid token for every
// request" (cache misses) and to measure the IdP's own introspection rate.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	tokenURL := flag.String("url", "", "token endpoint, e.g. http://127.0.0.1:9090/token")
	n := flag.Int("n", 1000, "number of tokens")
	c := flag.Int("c", 16, "requests in flight")
	client := flag.String("client", "app-admin:app-admin-secret", "client_id:secret (basic auth)")
	scope := flag.String("scope", "api:read", "scope to ask for")
	flag.Parse()
	if *tokenURL == "" || *n < 1 || *c < 1 {
		fmt.Fprintln(os.Stderr, "usage: mint -url URL [-n N] [-c C]")
		os.Exit(2)
	}
	id, secret, _ := strings.Cut(*client, ":")
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {*scope}}.Encode()
	hc := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *c, MaxIdleConns: *c},
	}

	tokens := make([]string, *n)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				tok, err := mintOne(hc, *tokenURL, id, secret, form)
				if err != nil {
					// One retry, then give up on the whole run: a benchmark needs every token.
					if tok, err = mintOne(hc, *tokenURL, id, secret, form); err != nil {
						fmt.Fprintln(os.Stderr, "mint:", err)
						failed.Add(1)
						return
					}
				}
				tokens[i] = tok
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	for _, t := range tokens {
		fmt.Fprintln(out, t)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "mint:", err)
		os.Exit(1)
	}
	el := time.Since(start)
	fmt.Fprintf(os.Stderr, "minted %d tokens in %.1fs (%.0f/s)\n", *n, el.Seconds(), float64(*n)/el.Seconds())
}

func mintOne(hc *http.Client, tokenURL, id, secret, form string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(id, secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint: %s: %.200s", resp.Status, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: no access_token in %.200s", body)
	}
	return tr.AccessToken, nil
}
