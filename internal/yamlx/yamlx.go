// Package yamlx decodes YAML strictly and reports errors as "file:line: field: problem",
// the form every imgpipe input (matrix.yaml, imgpipe.yaml, inventories) uses.
package yamlx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrEmpty is returned for a document with no content.
var ErrEmpty = errors.New("empty document")

// Error is a problem at a place in a YAML file.
type Error struct {
	File  string
	Line  int    // 0 when unknown
	Field string // dotted path, e.g. releases[3].extensions.glibc.digest; may be empty
	Msg   string
	// Err is the sentinel behind Msg, if any (ErrEmpty), for errors.Is.
	Err error
}

// Unwrap lets errors.Is(err, ErrEmpty) see through the position.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

var (
	lineRE       = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRE    = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	yamlPrefixRE = regexp.MustCompile(`^yaml: `)
)

// Decode decodes data into v with unknown fields rejected. Errors are joined *Error
// values naming the file and line. A document with several problems reports them all.
func Decode(file string, data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if err == nil {
		// A second document is almost always a mistake (a stray ---).
		var extra yaml.Node
		if err2 := dec.Decode(&extra); err2 == nil {
			return &Error{File: file, Line: extra.Line, Msg: "unexpected second YAML document"}
		}
		return nil
	}
	if errors.Is(err, io.EOF) {
		return &Error{File: file, Msg: ErrEmpty.Error(), Err: ErrEmpty}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, m := range te.Errors {
			errs = append(errs, convert(file, m))
		}
		return errors.Join(errs...)
	}
	return convert(file, yamlPrefixRE.ReplaceAllString(err.Error(), ""))
}

func convert(file, msg string) *Error {
	e := &Error{File: file, Msg: msg}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
	}
	if m := unknownRE.FindStringSubmatch(e.Msg); m != nil {
		e.Field = m[1]
		e.Msg = "unknown field (check spelling; see the reference in README.md)"
	}
	e.Msg = strings.ReplaceAll(e.Msg, "!!str", "string")
	e.Msg = strings.ReplaceAll(e.Msg, "!!int", "integer")
	e.Msg = strings.ReplaceAll(e.Msg, "!!map", "mapping")
	e.Msg = strings.ReplaceAll(e.Msg, "!!seq", "list")
	return e
}

// Locator finds the line of a field in a parsed document, for errors found after
// decoding (bad values rather than bad shapes). Parse it only when an error needs it.
type Locator struct {
	root *yaml.Node
}

// NewLocator parses data for line lookups; a document that does not parse gives a
// Locator that answers 0 for every path.
func NewLocator(data []byte) *Locator {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil || len(n.Content) == 0 {
		return &Locator{}
	}
	return &Locator{root: n.Content[0]}
}

// Line returns the line of the node at path, where each element is a mapping key
// (string) or a sequence index (int). When the full path does not exist it returns the
// line of the deepest node that does, so the error still points near the problem.
func (l *Locator) Line(path ...any) int {
	if l == nil || l.root == nil {
		return 0
	}
	n := l.root
	line := n.Line
	for _, p := range path {
		next := child(n, p)
		if next == nil {
			return line
		}
		n = next
		line = n.Line
	}
	return line
}

func child(n *yaml.Node, p any) *yaml.Node {
	switch k := p.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				// Point at the key for scalars and at the value for collections.
				if n.Content[i+1].Kind == yaml.ScalarNode {
					return n.Content[i+1]
				}
				v := *n.Content[i+1]
				v.Line = n.Content[i].Line
				return &v
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
			return n.Content[k]
		}
	}
	return nil
}

// Path renders a path for messages: ("releases", 3, "extensions") -> releases[3].extensions.
func Path(path ...any) string {
	var b strings.Builder
	for _, p := range path {
		switch k := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, k)
		}
	}
	return b.String()
}

// At builds an *Error for a path, looking the line up lazily.
func At(file string, loc *Locator, msg string, path ...any) *Error {
	return &Error{File: file, Line: loc.Line(path...), Field: Path(path...), Msg: msg}
}
