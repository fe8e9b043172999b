// Command fastidp is an introspection endpoint for filling the plugin's cache quickly: it answers
// every POST with an active answer shaped like node-oidc-provider's (the claims the bench forwards
// and checks), so that Traefik, not the IdP, bounds how fast new tokens are cached. GET /count
// returns the number of introspections answered; GET /stats returns "calls N most M", M being the
// most introspections it held at once.
//
// For bench/flood.sh: -delay holds every answer that long (an IdP that takes its time, so that
// calls pile up), and -inactive answers every token inactive (a flood of bogus tokens).
//
// For the rows of bench/run.sh that price a configuration (auth.go): -tls-dir serves HTTPS with a
// certificate made at start, -basic requires client_secret_basic credentials, and -jwt-key
// requires a private_key_jwt assertion signed with a key made at start. A call without them gets
// 401, which the bench counts as a failed row. HTTPS is HTTP/1.1 (no h2 is offered), as the plain
// rows are, so that row 12 differs from row 4 by TLS and the files alone.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// answer is the bench's IdP answer (bench_test.go's benchAnswer), valid until 2100.
const answer = `{"active":true,"grp":"admin","username":"alice","user":{"name":"Alice Admin","status":"active"},"areas":["office","home"],"client_id":"app-admin","exp":4102444800,"iat":1767225600,"iss":"http://127.0.0.1:9090","scope":"api:read","token_type":"Bearer"}`

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	delay := flag.Duration("delay", 0, "hold every answer this long")
	inactive := flag.Bool("inactive", false, "answer every token inactive")
	tlsDir := flag.String("tls-dir", "", "serve HTTPS; write the certificate, its own CA, to DIR/ca.pem")
	basic := flag.String("basic", "", "require client_secret_basic with these credentials, id:secret")
	jwtKey := flag.String("jwt-key", "", "require a private_key_jwt assertion (ES256); write its signing key to FILE")
	flag.Parse()
	check, err := clientCheck(*basic, *jwtKey)
	if err != nil {
		log.Fatal(err)
	}
	var calls, now, most atomic.Int64
	body := []byte(answer)
	if *inactive {
		body = []byte(`{"active":false}`)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("token") == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		if reason := check(r); reason != "" {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			log.Printf("refused a call: %s", reason)
			return
		}
		calls.Add(1)
		n := now.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if *delay > 0 {
			time.Sleep(*delay)
		}
		now.Add(-1)
		w.Header()["Content-Type"] = []string{"application/json"}
		_, _ = w.Write(body)
	})
	mux.HandleFunc("GET /count", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strconv.FormatInt(calls.Load(), 10)))
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintf(w, "calls %d most %d\n", calls.Load(), most.Load())
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	scheme := "http"
	if *tlsDir != "" {
		if ln, err = serveTLS(ln, *tlsDir); err != nil {
			log.Fatal(err)
		}
		scheme = "https"
	}
	fmt.Printf("IDP_READY %s://%s\n", scheme, ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
