package shadow

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// uiLine is one line of a request body as the review page shows it. Marked: the other
// side of the rewrite (original or effective request) has no member at this line's path,
// or another value there.
type uiLine struct {
	Text   string
	Marked bool
}

// uiRewrites lists where the effective request differs from the original, by JSON path.
type uiRewrites struct {
	OnlyOriginal  []string // paths the rewrite took away (or renamed)
	OnlyEffective []string // paths the rewrite added (or renamed to)
	Changed       []string // values the rewrite changed, such as a PATCH operation's path
}

// Any reports whether the rewrite changed anything.
func (rw uiRewrites) Any() bool {
	return len(rw.OnlyOriginal)+len(rw.OnlyEffective)+len(rw.Changed) > 0
}

// uiBodyLayout is a body laid out in indented lines, with the JSON path of the member each
// line opens (or holds).
type uiBodyLayout struct {
	lines  []string
	paths  []string          // per line; "" for a closing line and for the body itself
	order  []string          // member paths in order
	values map[string]string // lower-cased path → a leaf's JSON value, or "{" / "["
	parent map[string]string // lower-cased path → its parent's lower-cased path ("" at the top)
}

// layoutBody lays out a stored request's body: JSON indented, text as it is.
func layoutBody(req StoredRequest) *uiBodyLayout {
	l := &uiBodyLayout{values: map[string]string{}, parent: map[string]string{}}
	if len(req.Body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(req.Body))
		dec.UseNumber()
		if err := l.value(dec, "", "", "", 0); err == nil {
			if _, err := dec.Token(); errors.Is(err, io.EOF) {
				return l
			}
		}
		req.Text = string(req.Body) // not one JSON value: shown as it is
		*l = uiBodyLayout{values: map[string]string{}, parent: map[string]string{}}
	}
	for _, s := range strings.Split(req.Text, "\n") {
		if s != "" || len(l.lines) > 0 {
			l.add(s, "", "", "")
		}
	}
	return l
}

// value lays out the next JSON value of dec, the member path of its parent, at depth.
func (l *uiBodyLayout) value(dec *json.Decoder, path, parent, prefix string, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	indent := strings.Repeat("  ", depth)
	delim, isDelim := tok.(json.Delim)
	if !isDelim {
		v := jsonText(tok)
		l.add(indent+prefix+v, path, parent, v)
		return nil
	}
	closing := "}"
	if delim == '[' {
		closing = "]"
	}
	if !dec.More() {
		_, err := dec.Token()
		l.add(indent+prefix+string(delim)+closing, path, parent, string(delim))
		return err
	}
	l.add(indent+prefix+string(delim), path, parent, string(delim))
	for i := 0; dec.More(); i++ {
		child, childPrefix := path+"["+strconv.Itoa(i)+"]", ""
		if delim == '{' {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			child, childPrefix = key, jsonText(key)+": "
			if path != "" {
				child = path + "." + key
			}
		}
		if err := l.value(dec, child, path, childPrefix, depth+1); err != nil {
			return err
		}
		if dec.More() {
			l.lines[len(l.lines)-1] += ","
		}
	}
	_, err = dec.Token()
	l.add(indent+closing, "", "", "")
	return err
}

func (l *uiBodyLayout) add(line, path, parent, value string) {
	l.lines = append(l.lines, line)
	l.paths = append(l.paths, path)
	if path != "" {
		key := strings.ToLower(path) // SCIM attribute names are case-insensitive
		l.order = append(l.order, path)
		l.values[key] = value
		l.parent[key] = strings.ToLower(parent)
	}
}

// differs reports whether other has no member at path or another leaf value.
func (l *uiBodyLayout) differs(path string, other *uiBodyLayout) bool {
	key := strings.ToLower(path)
	v, ok := other.values[key]
	return !ok || v != l.values[key]
}

// marked returns l's lines, marking those that differ from other.
func (l *uiBodyLayout) marked(other *uiBodyLayout) []uiLine {
	out := make([]uiLine, len(l.lines))
	for i, s := range l.lines {
		out[i] = uiLine{Text: s, Marked: l.paths[i] != "" && l.differs(l.paths[i], other)}
	}
	return out
}

// compare lists the members of l (the original) and effective that the other lacks (only
// the outermost of a missing subtree), and the leaves whose values differ.
func (l *uiBodyLayout) compare(effective *uiBodyLayout) uiRewrites {
	var rw uiRewrites
	only := func(a, b *uiBodyLayout) []string {
		var out []string
		for _, p := range a.order {
			key := strings.ToLower(p)
			if _, ok := b.values[key]; ok {
				continue
			}
			if parent := a.parent[key]; parent != "" {
				if _, ok := b.values[parent]; !ok {
					continue // its parent is listed already
				}
			}
			out = append(out, p)
		}
		return out
	}
	rw.OnlyOriginal, rw.OnlyEffective = only(l, effective), only(effective, l)
	for _, p := range effective.order {
		key := strings.ToLower(p)
		if v, ok := l.values[key]; ok && v != effective.values[key] {
			rw.Changed = append(rw.Changed, p)
		}
	}
	return rw
}

// jsonText is v as JSON, without escaping <, > and & (the page escapes what it shows).
func jsonText(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "?"
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
