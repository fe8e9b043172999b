package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// api serves the list and watch requests of client-go's informers.
type api struct {
	store *store
	log   *log.Logger
}

// request is a parsed collection URL: /api/v1[/namespaces/NS]/PLURAL or
// /apis/GROUP/VERSION[/namespaces/NS]/PLURAL.
type request struct {
	plural    string
	res       resource
	namespace string // "" for all namespaces
	selector  []requirement
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.log.Printf("%s %s", r.Method, r.URL.RequestURI())
	if r.Method != http.MethodGet {
		writeStatus(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "this API server is read-only")
		return
	}
	req, err := parseRequest(r)
	if err != nil {
		writeStatus(w, http.StatusNotFound, "NotFound", err.Error())
		return
	}
	q := r.URL.Query()
	if req.selector, err = parseSelector(q.Get("labelSelector")); err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	if q.Get("watch") == "true" || q.Get("watch") == "1" {
		a.watch(w, r, req)
		return
	}
	a.list(w, req)
}

func parseRequest(r *http.Request) (request, error) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var gv string
	switch {
	case len(parts) >= 3 && parts[0] == "api" && parts[1] == "v1":
		gv, parts = "v1", parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		gv, parts = parts[1]+"/"+parts[2], parts[3:]
	default:
		return request{}, fmt.Errorf("no such path %s", r.URL.Path)
	}
	var req request
	if len(parts) == 3 && parts[0] == "namespaces" {
		req.namespace, parts = parts[1], parts[2:]
	}
	if len(parts) != 1 {
		return request{}, fmt.Errorf("only collections are served, not %s", r.URL.Path)
	}
	res, ok := resources[parts[0]]
	if !ok || res.apiVersion() != gv || (req.namespace != "" && !res.namespaced) {
		return request{}, fmt.Errorf("the server could not find the requested resource %s", r.URL.Path)
	}
	req.plural, req.res = parts[0], res
	return req, nil
}

// matches reports whether o is in the collection req names.
func (req request) matches(o *object) bool {
	if o.plural != req.plural || (req.namespace != "" && o.namespace != req.namespace) {
		return false
	}
	return selects(req.selector, o.labels())
}

// list answers a list: the matching objects, sorted, and the store's resource version.
func (a *api) list(w http.ResponseWriter, req request) {
	a.store.mu.Lock()
	var objs []*object
	for _, o := range a.store.objects {
		if req.matches(o) {
			objs = append(objs, o)
		}
	}
	rv := a.store.rv
	a.store.mu.Unlock()
	sort.Slice(objs, func(i, j int) bool {
		return objectKey("", objs[i].namespace, objs[i].name) < objectKey("", objs[j].namespace, objs[j].name)
	})
	items := make([]map[string]any, 0, len(objs))
	for _, o := range objs {
		items = append(items, o.wire())
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"apiVersion": req.res.apiVersion(),
		"kind":       req.res.kind + "List",
		"metadata":   map[string]any{"resourceVersion": strconv.FormatInt(rv, 10)},
		"items":      items,
	})
}

// watch streams the changes of the collection after the request's resourceVersion. With
// sendInitialEvents=true (client-go's WatchListClient, on by default in v0.35 and later) it first
// sends every matching object as ADDED, then the bookmark that ends the initial events.
func (a *api) watch(w http.ResponseWriter, r *http.Request, req request) {
	q := r.URL.Query()
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeStatus(w, http.StatusInternalServerError, "InternalError", "no streaming")
		return
	}
	timeout := 30 * time.Minute
	if s, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && s > 0 {
		timeout = time.Duration(s) * time.Second
	}
	initial := q.Get("sendInitialEvents") == "true"
	from, err := strconv.ParseInt(q.Get("resourceVersion"), 10, 64)
	if q.Get("resourceVersion") == "" {
		from, err = 0, nil
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "BadRequest", "resourceVersion: not a number")
		return
	}

	s := a.store
	s.mu.Lock()
	pos := len(s.events) // the first event not sent yet
	var first []map[string]any
	switch {
	case initial:
		for _, o := range s.objects {
			if req.matches(o) {
				first = append(first, watchEvent("ADDED", o.wire()))
			}
		}
		first = append(first, watchEvent("BOOKMARK", map[string]any{
			"apiVersion": req.res.apiVersion(),
			"kind":       req.res.kind,
			"metadata": map[string]any{
				"resourceVersion": strconv.FormatInt(s.rv, 10),
				"annotations":     map[string]any{"k8s.io/initial-events-end": "true"},
			},
		}))
	case from > 0:
		// Replay what happened after from: every event is kept.
		pos = 0
		for pos < len(s.events) && s.events[pos].obj.rv <= from {
			pos++
		}
	}
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, e := range first {
		if enc.Encode(e) != nil {
			return
		}
	}
	flusher.Flush()
	end := time.NewTimer(timeout)
	defer end.Stop()
	for {
		s.mu.Lock()
		var batch []map[string]any
		for ; pos < len(s.events); pos++ {
			if e := s.events[pos]; req.matches(e.obj) {
				batch = append(batch, watchEvent(e.kind, e.obj.wire()))
			}
		}
		changed := s.changed
		s.mu.Unlock()
		for _, e := range batch {
			if enc.Encode(e) != nil {
				return
			}
		}
		if len(batch) > 0 {
			flusher.Flush()
		}
		select {
		case <-changed:
		case <-end.C:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func watchEvent(kind string, obj map[string]any) map[string]any {
	return map[string]any{"type": kind, "object": obj}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeStatus answers an error as a metav1.Status, which client-go reads.
func writeStatus(w http.ResponseWriter, code int, reason, message string) {
	writeJSON(w, code, map[string]any{
		"apiVersion": "v1", "kind": "Status", "status": "Failure",
		"message": message, "reason": reason, "code": code,
	})
}
