package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// resource is a kind this server serves, by its plural name in URLs.
type resource struct {
	group, version, kind string
	namespaced           bool
}

func (r resource) apiVersion() string {
	if r.group == "" {
		return r.version
	}
	return r.group + "/" + r.version
}

// resources is what Traefik v3.7.13's kubernetesCRD provider lists and watches
// (pkg/provider/kubernetes/crd/client.go, WatchAll): the traefik.io kinds, Services,
// EndpointSlices, ConfigMaps and Secrets in the watched namespaces, and Nodes.
var resources = map[string]resource{
	"services":       {"", "v1", "Service", true},
	"secrets":        {"", "v1", "Secret", true},
	"configmaps":     {"", "v1", "ConfigMap", true},
	"nodes":          {"", "v1", "Node", false},
	"endpointslices": {"discovery.k8s.io", "v1", "EndpointSlice", true},
}

func init() {
	for _, kind := range []string{"IngressRoute", "IngressRouteTCP", "IngressRouteUDP", "Middleware", "MiddlewareTCP",
		"TLSOption", "TLSStore", "ServersTransport", "ServersTransportTCP", "TraefikService"} {
		resources[strings.ToLower(kind)+"s"] = resource{"traefik.io", "v1alpha1", kind, true}
	}
}

// pluralOf returns the plural of a manifest's apiVersion and kind, if this server serves it.
func pluralOf(apiVersion, kind string) (string, bool) {
	plural := strings.ToLower(kind) + "s"
	r, ok := resources[plural]
	if !ok || r.apiVersion() != apiVersion || r.kind != kind {
		return "", false
	}
	return plural, true
}

// object is one stored object, with the resource version of its last change.
type object struct {
	plural, namespace, name string
	rv                      int64
	body                    map[string]any // the manifest, normalized, without resourceVersion
	canon                   string         // body as JSON, to tell a change
}

// event is a change, as a watch reports it.
type event struct {
	kind string // ADDED, MODIFIED, DELETED
	obj  *object
}

// store holds the objects of the manifests and every change since start, so that a watch from
// any resource version it handed out can be replayed.
type store struct {
	mu      sync.Mutex
	rv      int64
	objects map[string]*object // by plural/namespace/name
	events  []event
	changed chan struct{} // closed and replaced on every change
	logf    func(format string, args ...any)
}

func newStore(logf func(string, ...any)) *store {
	return &store{objects: map[string]*object{}, changed: make(chan struct{}), logf: logf}
}

func objectKey(plural, namespace, name string) string {
	return plural + "/" + namespace + "/" + name
}

// readDir parses every *.yaml and *.yml file in dir (multi-document), in name order, into the
// objects this server serves. Kinds it does not serve (a Deployment) are skipped.
func readDir(dir string) (map[string]*object, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.y*ml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := map[string]*object{}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for n := 1; ; n++ {
			var doc map[string]any
			if err := dec.Decode(&doc); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("%s: document %d: %w", filepath.Base(name), n, err)
			}
			if doc == nil {
				continue
			}
			o, err := normalize(doc)
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", filepath.Base(name), n, err)
			}
			if o == nil {
				continue
			}
			k := objectKey(o.plural, o.namespace, o.name)
			if _, dup := out[k]; dup {
				return nil, fmt.Errorf("%s: document %d: %s is defined twice", filepath.Base(name), n, k)
			}
			out[k] = o
		}
	}
	return out, nil
}

// normalize checks a manifest and does what the API server does on a create: the namespace
// defaults to "default", and a Secret's stringData is merged into its base64 data.
func normalize(doc map[string]any) (*object, error) {
	apiVersion, _ := doc["apiVersion"].(string)
	kind, _ := doc["kind"].(string)
	plural, ok := pluralOf(apiVersion, kind)
	if !ok {
		return nil, nil
	}
	meta, _ := doc["metadata"].(map[string]any)
	if meta == nil {
		return nil, fmt.Errorf("%s without metadata", kind)
	}
	name, _ := meta["name"].(string)
	if name == "" {
		return nil, fmt.Errorf("%s without metadata.name", kind)
	}
	namespace, _ := meta["namespace"].(string)
	if resources[plural].namespaced && namespace == "" {
		namespace = "default"
		meta["namespace"] = namespace
	}
	delete(meta, "resourceVersion")
	meta["uid"] = fmt.Sprintf("%s-%s-%s", plural, namespace, name)
	meta["creationTimestamp"] = "2026-01-01T00:00:00Z"
	if kind == "Secret" {
		mergeStringData(doc)
	}
	canon, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%s %s/%s: %w", kind, namespace, name, err)
	}
	return &object{plural: plural, namespace: namespace, name: name, body: doc, canon: string(canon)}, nil
}

// mergeStringData moves a Secret's stringData into data, base64-encoded, as the API server does.
func mergeStringData(doc map[string]any) {
	sd, _ := doc["stringData"].(map[string]any)
	if sd == nil {
		return
	}
	data, _ := doc["data"].(map[string]any)
	if data == nil {
		data = map[string]any{}
	}
	for k, v := range sd {
		data[k] = base64.StdEncoding.EncodeToString([]byte(fmt.Sprint(v)))
	}
	doc["data"] = data
	delete(doc, "stringData")
}

// replace makes next the store's objects, recording an event for each one added, changed or
// removed, and wakes the watches.
func (s *store) replace(next map[string]*object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range next {
		keys = append(keys, k)
	}
	for k := range s.objects {
		if _, ok := next[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	n := 0
	for _, k := range keys {
		old, now := s.objects[k], next[k]
		switch {
		case now == nil:
			s.rv++
			gone := *old
			gone.rv = s.rv
			s.events = append(s.events, event{"DELETED", &gone})
			delete(s.objects, k)
		case old == nil || old.canon != now.canon:
			s.rv++
			now.rv = s.rv
			kind := "ADDED"
			if old != nil {
				kind = "MODIFIED"
			}
			s.events = append(s.events, event{kind, now})
			s.objects[k] = now
		default:
			continue
		}
		n++
		s.logf("%s %s (resourceVersion %d)", s.events[len(s.events)-1].kind, k, s.rv)
	}
	if n > 0 {
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// wire returns the object as the API serves it: with its kind, apiVersion and resourceVersion.
func (o *object) wire() map[string]any {
	out := make(map[string]any, len(o.body))
	for k, v := range o.body {
		out[k] = v
	}
	meta := map[string]any{}
	for k, v := range o.body["metadata"].(map[string]any) {
		meta[k] = v
	}
	meta["resourceVersion"] = strconv.FormatInt(o.rv, 10)
	out["metadata"] = meta
	return out
}

// labels returns the object's labels.
func (o *object) labels() map[string]string {
	meta, _ := o.body["metadata"].(map[string]any)
	raw, _ := meta["labels"].(map[string]any)
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		out[k] = fmt.Sprint(v)
	}
	return out
}
