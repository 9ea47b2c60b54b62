package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// writeYAML writes v as block YAML by streaming its JSON encoding: the same data and
// field order as render's YAML (a JSON round trip through yaml.Node), at a fraction
// of the cost, for outputs that grow with the cluster (a 10,000-node plan is 30 MB).
// Strings are plain when that cannot change their meaning, else double-quoted (a JSON
// string is a YAML double-quoted scalar).
func writeYAML(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := yamlValue(bw, dec, 0, ""); err != nil {
		return err
	}
	return bw.Flush()
}

// yamlValue writes the next JSON value; lead is what precedes it on its line
// ("key:" or "-"), written here so empty collections can stay on that line.
func yamlValue(bw *bufio.Writer, dec *json.Decoder, indent int, lead string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return yamlObject(bw, dec, indent, lead)
		}
		return yamlArray(bw, dec, indent, lead)
	case string:
		bw.WriteString(lead + sep(lead) + yamlString(t) + "\n")
	case json.Number:
		bw.WriteString(lead + sep(lead) + t.String() + "\n")
	case bool:
		bw.WriteString(lead + sep(lead) + strconv.FormatBool(t) + "\n")
	case nil:
		bw.WriteString(lead + sep(lead) + "null\n")
	default:
		return fmt.Errorf("unexpected JSON token %v", tok)
	}
	return nil
}

func sep(lead string) string {
	if lead == "" {
		return ""
	}
	return " "
}

func yamlObject(bw *bufio.Writer, dec *json.Decoder, indent int, lead string) error {
	if !dec.More() {
		_, _ = dec.Token()
		bw.WriteString(lead + sep(lead) + "{}\n")
		return nil
	}
	pad := strings.Repeat("  ", indent)
	first := true
	if lead != "" && !strings.HasSuffix(lead, "-") {
		bw.WriteString(lead + "\n")
		indent++
		pad = strings.Repeat("  ", indent)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := yamlString(tok.(string)) + ":"
		prefix := pad
		if first && strings.HasSuffix(lead, "-") {
			prefix = lead + " " // "- key: value" on the item's line
		}
		first = false
		if err := yamlValue(bw, dec, indent, prefix+key); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

func yamlArray(bw *bufio.Writer, dec *json.Decoder, indent int, lead string) error {
	if !dec.More() {
		_, _ = dec.Token()
		bw.WriteString(lead + sep(lead) + "[]\n")
		return nil
	}
	if lead != "" {
		bw.WriteString(lead + "\n")
	}
	// Sequences under a key sit at the key's indentation, as yaml.v3 writes them.
	pad := strings.Repeat("  ", indent)
	for dec.More() {
		if err := yamlValue(bw, dec, indent+1, pad+"-"); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

// yamlString is s plain when plain YAML reads it back as the same string, else
// double-quoted.
func yamlString(s string) string {
	if plainSafe(s) {
		return s
	}
	return strconv.Quote(s)
}

func plainSafe(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", ".nan":
		return false
	}
	c0 := s[0]
	if !('a' <= c0 && c0 <= 'z' || 'A' <= c0 && c0 <= 'Z') {
		// A leading digit, sign or dot could read as a number (1.30, 0x1F, 1e3, .5).
		if _, err := strconv.ParseFloat(s, 64); err == nil || !onlyVersionish(s) {
			return false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '/' || c == '+' || c == '@' || c == '=' || c == ',':
		case c == ':' && i+1 < len(s) && s[i+1] != ' ':
		case c == ' ' && i > 0 && i+1 < len(s) && s[i+1] != ' ' && s[i+1] != '#' && s[i-1] != ':':
		default:
			return false
		}
	}
	return true
}

// onlyVersionish accepts digit-led strings with two or more dots (1.30.3, 10.0.0.11),
// which no YAML resolver reads as a number; other digit-led strings get quoted.
func onlyVersionish(s string) bool {
	if s[0] < '0' || s[0] > '9' {
		return false
	}
	return strings.Count(s, ".") >= 2 && !strings.ContainsAny(s, ": ")
}
