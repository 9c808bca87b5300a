package shadow

import (
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scim-shadow/caddy-scim-shadow/rules"
)

// TestWarningJobLeanWithoutMiss: a live write without a missing attribute is queued
// without its request (header copy, URI, original body) and its fallback-only notes carry
// no key; the notes the worker stores are those of the full job but for that key, which
// the summing of fallback uses does not read. A miss still gets the whole request.
func TestWarningJobLeanWithoutMiss(t *testing.T) {
	set, err := rules.Compile(map[string]rules.ResourceRules{"User": {Rules: []rules.Rule{
		{Target: "favoriteColor", From: []string{"favorite_color"}},
		{Target: "title", From: []string{"jobTitle"}, WarnIfMissing: true},
	}}, "Group": {Rules: []rules.Rule{{Target: "externalId", From: []string{"extId"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := NewWarningRecorder(4)
	e := &Engine{Rules: set, Warnings: rec}
	for _, tc := range []struct {
		name, path, body string
		lean             bool
	}{
		{"fallbacks, warn target present", "/scim/v2/Users", `{"userName":"ada","favorite_color":"red","jobTitle":"cto"}`, true},
		{"fallbacks only", "/scim/v2/Groups", `{"displayName":"eng","extId":"g-1"}`, true},
		{"a miss", "/scim/v2/Users", `{"userName":"bob","favorite_color":"red"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body))
			r.Header.Set("Authorization", "Bearer secret")
			d := &Decision{Connection: "acme", Mode: ModeLive, Target: Classify("POST", tc.path, nil)}
			effective, findings, err := set.RewriteResource(d.Target.ResourceType, rules.OpCreate, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			d.Findings = findings
			e.noteWarnings(r, d, []byte(tc.body), effective, 0, "")
			j := <-rec.queue
			rec.queuedBytes.Add(-int64(len(j.original) + len(j.effective)))
			if lean := j.header == nil && j.original == nil && j.uri == ""; lean != tc.lean {
				t.Fatalf("lean job = %v, want %v", lean, tc.lean)
			}
			full := *j
			full.original, full.uri, full.header = []byte(tc.body), r.URL.RequestURI(), RedactHeader(r.Header, nil)
			at := time.Now()
			j.at, full.at = at, at
			got, want := j.notes(), full.notes()
			for i := range want {
				if tc.lean && len(want[i].Missing) == 0 && len(want[i].Present) == 0 {
					want[i].Key = "" // summed by (connection, type, attribute, source): no key read
				}
			}
			if len(got) != 1 || len(got[0].Fallbacks) == 0 {
				t.Fatalf("notes = %+v, want one with a fallback", got)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("notes = %+v, want %+v", got, want)
			}
		})
	}
}

// TestStoredRequestOwnsItsBody: a stored request keeps its body (redacted or not) in memory
// of its own: the caller's buffer may be reused once the record is made.
func TestStoredRequestOwnsItsBody(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"userName":"ann"}`, `{"userName":"ann"}`},
		{`{"userName":"ann","password":"pw"}`, `{"userName":"ann","password":"` + Redacted + `"}`},
		{`not json, password=pw`, ""},
	} {
		body := []byte(tc.body)
		sr := storedRequestOf("POST", "/Users", map[string][]string{}, body)
		clear(body)
		if string(sr.Body) != tc.want {
			t.Errorf("stored body of %s = %q, want %q", tc.body, sr.Body, tc.want)
		}
		if tc.want == "" && (sr.Text == "" || strings.Contains(sr.Text, "=pw")) {
			t.Errorf("stored text of %s = %q", tc.body, sr.Text)
		}
	}
}
