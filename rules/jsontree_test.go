package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// treeSeeds are JSON texts whose layout the scanners must keep: whitespace everywhere it
// may be, escaped quotes and backslashes before quotes, escaped keys, nesting, numbers and
// literals at the end of a container.
var treeSeeds = []string{
	`{}`, `{ }`, `[]`, `[ ]`, `{"a":1}`, `[1]`,
	" {\n \"a\" :\t[ 1 , 2.5e-3 , -0 ] ,\r\n\"b\":{ \"c\" : \"d\\\"}\" } , \"e\":true,\"f\":null , \"g\":false }\n",
	`{"pass\u0077ord":"x","k\\":"v\\\\","q":"\\\"","u":"\u00e9\""}`,
	`{"a":[{"b":[[],{},[{"c":"]}["}]]}],"d":"{"}`,
	`[ "a" , {"b":1} ,[2,3] , null,true , -1.5E+10 ]`,
	`{"Resources":[{"id":"1","emails":[{"type":"work","value":"a@b"}]},{"id":"2"}],"totalResults":2}`,
}

// TestTreeScanMatchesGJSON: the tree's scanners split valid JSON exactly as gjson's
// ForEach does, for the seeds and every IdP-shaped payload of the table tests.
func TestTreeScanMatchesGJSON(t *testing.T) {
	for _, s := range append(append([]string{}, treeSeeds...), fuzzSeeds...) {
		if err := sameTreeAsGJSON(s); err != nil {
			t.Errorf("%s\n%s", s, err)
		}
	}
}

// FuzzTreeScan: on valid JSON the scanners agree with gjson's ForEach member by member, at
// every depth; on any other text they neither panic nor read out of bounds.
func FuzzTreeScan(f *testing.F) {
	for _, s := range append(append([]string{}, treeSeeds...), fuzzSeeds...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := sameTreeAsGJSON(s); err != nil {
			t.Fatal(err)
		}
	})
}

// sameTreeAsGJSON parses s (any text) with the tree, and, when s is a valid JSON object
// or array, compares every member and element with gjson's.
func sameTreeAsGJSON(s string) error {
	t := strings.TrimLeft(s, " \t\r\n")
	t = strings.TrimRight(t, " \t\r\n")
	if t == "" {
		return nil
	}
	valid := gjson.Valid(t)
	switch {
	case t[0] == '{':
		o := (*arena)(nil).parseObj(t)
		if valid {
			return sameObj(o, t)
		}
		walkTree(o, nil)
	case t[0] == '[':
		a := (*arena)(nil).parseArr(t)
		if valid {
			return sameArr(a, t)
		}
		walkTree(nil, a)
	}
	return nil
}

// walkTree parses every nested value of a tree built from text that is not valid JSON.
func walkTree(o *jobj, a *jarr) {
	if o != nil {
		for i := range o.mem {
			m := &o.mem[i]
			walkTree(m.obj(nil), m.arr(nil))
			_ = m.text()
		}
	}
	if a != nil {
		for i := range a.el {
			e := &a.el[i]
			var ea *jarr
			if len(e.val) > 0 && e.val[0] == '[' {
				ea = (*arena)(nil).parseArr(e.val)
			}
			walkTree(e.obj(nil), ea)
		}
	}
}

// gjsonMembers splits raw, a valid JSON object or array, as the tree did when it used
// gjson's ForEach: each member's (or element's) key, spelling, colon and value texts, and
// the whitespace before and after it, and the whitespace before the closing bracket.
func gjsonMembers(raw string) (ms []jmem, tail string) {
	end := 1
	gjson.Parse(raw).ForEach(func(k, v gjson.Result) bool {
		m := jmem{val: v.Raw, pre: raw[end:v.Index]}
		if k.Raw != "" { // an object's member
			m.key, m.rkey, m.mid, m.pre = k.Str, k.Raw, raw[k.Index+len(k.Raw):v.Index], raw[end:k.Index]
		}
		if n := len(ms); n > 0 {
			if c := strings.IndexByte(m.pre, ','); c >= 0 {
				ms[n-1].post, m.pre = m.pre[:c], m.pre[c+1:]
			}
		}
		ms = append(ms, m)
		end = v.Index + len(v.Raw)
		return true
	})
	return ms, raw[end : len(raw)-1]
}

func sameObj(o *jobj, raw string) error {
	if err := sameMembers(raw, o.mem, o.tail); err != nil {
		return err
	}
	if got := string(o.appendTo(nil)); got != raw {
		return fmt.Errorf("re-emitted %s, want %s", got, raw)
	}
	return nil
}

func sameArr(a *jarr, raw string) error {
	got := make([]jmem, len(a.el))
	for i, e := range a.el {
		got[i] = jmem{pre: e.pre, val: e.val, post: e.post}
	}
	return sameMembers(raw, got, a.tail)
}

// sameMembers compares the members (or elements) the tree parsed from raw with gjson's,
// and each nested object or array in them.
func sameMembers(raw string, got []jmem, gotTail string) error {
	want, tail := gjsonMembers(raw)
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d members, gjson %d", raw, len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.key != w.key || g.rkey != w.rkey || g.mid != w.mid || g.val != w.val || g.pre != w.pre || g.post != w.post {
			return fmt.Errorf("%s: member %d = %+v, gjson %+v", raw, i, g, w)
		}
		if err := sameNested(g.val); err != nil {
			return err
		}
	}
	if gotTail != tail {
		return fmt.Errorf("%s: tail %q, gjson %q", raw, gotTail, tail)
	}
	return nil
}

func sameNested(v string) error {
	switch {
	case len(v) > 0 && v[0] == '{':
		return sameObj((*arena)(nil).parseObj(v), v)
	case len(v) > 0 && v[0] == '[':
		return sameArr((*arena)(nil).parseArr(v), v)
	}
	return nil
}
