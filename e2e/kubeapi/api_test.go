package main

import (
	"bufio"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const manifests = `apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: apps}
stringData: {authorization: Basic abc}
---
apiVersion: v1
kind: Secret
metadata: {name: helm-release, namespace: apps, labels: {owner: helm}}
data: {x: eQ==}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: whoami, namespace: apps}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: auth}
spec: {plugin: {oAuthIntrospection: {claims: "Equals(` + "`grp`, `admin`" + `)"}}}
`

type listResult struct {
	Kind     string
	Metadata struct{ ResourceVersion string }
	Items    []map[string]any
}

func serve(t *testing.T, dir string) (*store, *httptest.Server) {
	t.Helper()
	s := newStore(t.Logf)
	objs, err := readDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.replace(objs)
	srv := httptest.NewServer(&api{store: s, log: log.New(io.Discard, "", 0)})
	t.Cleanup(srv.Close)
	return s, srv
}

func get(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestListSelectorsAndSecrets: Traefik's Secret informer lists with owner!=helm, and reads the
// base64 data the API server makes of stringData; kinds the provider never asks for are skipped;
// a namespace defaults to "default".
func TestListSelectorsAndSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "all.yaml"), []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	_, srv := serve(t, dir)
	var secrets listResult
	get(t, srv.URL+"/api/v1/secrets?labelSelector=owner%21%3Dhelm", &secrets)
	if secrets.Kind != "SecretList" || len(secrets.Items) != 1 {
		t.Fatalf("secrets not owned by helm: %+v", secrets)
	}
	data := secrets.Items[0]["data"].(map[string]any)
	if data["authorization"] != "QmFzaWMgYWJj" || secrets.Items[0]["stringData"] != nil {
		t.Errorf("stringData not turned into data: %v", secrets.Items[0])
	}
	var mws listResult
	get(t, srv.URL+"/apis/traefik.io/v1alpha1/namespaces/default/middlewares", &mws)
	if len(mws.Items) != 1 || mws.Items[0]["kind"] != "Middleware" {
		t.Fatalf("middlewares in default: %+v", mws)
	}
	if resp, err := http.Get(srv.URL + "/apis/apps/v1/deployments"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("deployments are not served, want 404: %v %v", resp, err)
	}
}

// TestWatchSendsInitialEventsThenChanges: a watch with sendInitialEvents (client-go's
// WatchListClient) gets every object, the bookmark that ends them, then the events of a change.
// A watch from a resource version replays what came after it.
func TestWatchSendsInitialEventsThenChanges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "all.yaml")
	if err := os.WriteFile(path, []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	s, srv := serve(t, dir)
	resp, err := http.Get(srv.URL + "/apis/traefik.io/v1alpha1/middlewares?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan map[string]any)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				events <- e
			}
		}
		close(events)
	}()
	next := func(want string) map[string]any {
		t.Helper()
		select {
		case e := <-events:
			if e["type"] != want {
				t.Fatalf("event %v, want %s", e, want)
			}
			return e["object"].(map[string]any)
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event", want)
		}
		return nil
	}
	next("ADDED")
	bookmark := next("BOOKMARK")
	meta := bookmark["metadata"].(map[string]any)
	if meta["annotations"].(map[string]any)["k8s.io/initial-events-end"] != "true" {
		t.Errorf("bookmark without the end of the initial events: %v", bookmark)
	}
	before := meta["resourceVersion"].(string)

	changed, err := readDirFrom(t, dir, manifests+"---\napiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: second}\n")
	if err != nil {
		t.Fatal(err)
	}
	s.replace(changed)
	if got := next("ADDED")["metadata"].(map[string]any)["name"]; got != "second" {
		t.Errorf("added %v, want second", got)
	}
	s.replace(map[string]*object{})
	next("DELETED")
	next("DELETED")

	// A second watch from the bookmark's version replays the three events.
	replay, err := http.Get(srv.URL + "/apis/traefik.io/v1alpha1/middlewares?watch=true&timeoutSeconds=1&resourceVersion=" + before)
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Body.Close()
	var kinds []string
	sc := bufio.NewScanner(replay.Body)
	for sc.Scan() {
		var e struct{ Type string }
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			kinds = append(kinds, e.Type)
		}
	}
	if len(kinds) != 3 || kinds[0] != "ADDED" || kinds[1] != "DELETED" || kinds[2] != "DELETED" {
		t.Errorf("replayed %v, want ADDED DELETED DELETED", kinds)
	}
}

// readDirFrom writes content as the directory's only manifest file and reads the directory.
func readDirFrom(t *testing.T, dir, content string) (map[string]*object, error) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "all.yaml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return readDir(dir)
}
