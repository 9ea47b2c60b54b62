package ghasim

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// ErrExpr is wrapped by every expression syntax or evaluation error.
var ErrExpr = errors.New("workflow expression")

// exprCtx is what an expression may read: named contexts (inputs, secrets, steps,
// needs, runner, github, env, matrix, vars) as nested maps of strings/bools/maps,
// and the job status the status functions report.
type exprCtx struct {
	contexts map[string]any
	// status is "success", "failure" or "cancelled" for success()/failure()/cancelled().
	status string
}

// Interpolate replaces every ${{ expr }} in s by the expression's value as a
// string, the way GitHub substitutes run:, with: and env: values before use.
func (c *exprCtx) Interpolate(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return "", fmt.Errorf("%w: unterminated ${{ in %q", ErrExpr, s)
		}
		v, err := c.Eval(s[i+3 : i+j])
		if err != nil {
			return "", err
		}
		b.WriteString(s[:i])
		b.WriteString(toString(v))
		s = s[i+j+2:]
	}
}

// Condition evaluates an if: value. A bare expression or one wrapped in ${{ }} is
// accepted; without a status function it is implicitly `success() && (cond)`, as
// GitHub does. An empty condition is success().
func (c *exprCtx) Condition(cond string) (bool, error) {
	cond = strings.TrimSpace(cond)
	if strings.HasPrefix(cond, "${{") && strings.HasSuffix(cond, "}}") {
		cond = strings.TrimSpace(cond[3 : len(cond)-2])
	}
	if cond == "" {
		cond = "success()"
	}
	if !usesStatusFunc(cond) {
		cond = "success() && (" + cond + ")"
	}
	v, err := c.Eval(cond)
	if err != nil {
		return false, err
	}
	return truthy(v), nil
}

func usesStatusFunc(s string) bool {
	for _, f := range []string{"success(", "failure(", "always(", "cancelled("} {
		if strings.Contains(s, f) {
			return true
		}
	}
	return false
}

// Eval parses and evaluates one expression (without the ${{ }}).
func (c *exprCtx) Eval(src string) (any, error) {
	p := &parser{src: src, ctx: c}
	p.next()
	v, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, fmt.Errorf("%w: unexpected %q in %q", ErrExpr, p.tok.text, src)
	}
	return v, nil
}

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tString
	tNumber
	tOp
)

type token struct {
	kind tokKind
	text string
}

type parser struct {
	src string
	pos int
	tok token
	err error
	ctx *exprCtx
}

func (p *parser) next() {
	for p.pos < len(p.src) && unicode.IsSpace(rune(p.src[p.pos])) {
		p.pos++
	}
	if p.pos >= len(p.src) {
		p.tok = token{kind: tEOF}
		return
	}
	s, c := p.src[p.pos:], p.src[p.pos]
	switch {
	case c == '\'':
		p.tok = p.lexString()
	case c >= '0' && c <= '9' || c == '-' && len(s) > 1 && s[1] >= '0' && s[1] <= '9':
		n := 1
		for n < len(s) && (s[n] >= '0' && s[n] <= '9' || s[n] == '.' || s[n] == 'x' || s[n] >= 'a' && s[n] <= 'f' || s[n] >= 'A' && s[n] <= 'F') {
			n++
		}
		p.tok, p.pos = token{tNumber, s[:n]}, p.pos+n
	case c == '_' || unicode.IsLetter(rune(c)):
		n := 1
		for n < len(s) && (s[n] == '_' || s[n] == '-' || unicode.IsLetter(rune(s[n])) || unicode.IsDigit(rune(s[n]))) {
			n++
		}
		p.tok, p.pos = token{tIdent, s[:n]}, p.pos+n
	default:
		for _, op := range []string{"==", "!=", "<=", ">=", "&&", "||", "!", "<", ">", "(", ")", "[", "]", ".", ",", "*"} {
			if strings.HasPrefix(s, op) {
				p.tok, p.pos = token{tOp, op}, p.pos+len(op)
				return
			}
		}
		p.fail("unexpected character %q", c)
		p.tok = token{kind: tEOF}
	}
}

func (p *parser) lexString() token {
	var b strings.Builder
	i := p.pos + 1
	for i < len(p.src) {
		if p.src[i] == '\'' {
			if i+1 < len(p.src) && p.src[i+1] == '\'' { // '' escapes a quote
				b.WriteByte('\'')
				i += 2
				continue
			}
			p.pos = i + 1
			return token{tString, b.String()}
		}
		b.WriteByte(p.src[i])
		i++
	}
	p.fail("unterminated string")
	p.pos = len(p.src)
	return token{kind: tEOF}
}

func (p *parser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s in %q", ErrExpr, fmt.Sprintf(format, args...), p.src)
	}
}

func (p *parser) is(op string) bool { return p.tok.kind == tOp && p.tok.text == op }

func (p *parser) or() (any, error) {
	l, err := p.and()
	for err == nil && p.is("||") {
		p.next()
		var r any
		r, err = p.and()
		if !truthy(l) {
			l = r
		}
	}
	return l, p.firstErr(err)
}

func (p *parser) and() (any, error) {
	l, err := p.cmp()
	for err == nil && p.is("&&") {
		p.next()
		var r any
		r, err = p.cmp()
		if truthy(l) {
			l = r
		}
	}
	return l, p.firstErr(err)
}

func (p *parser) cmp() (any, error) {
	l, err := p.unary()
	for err == nil && p.tok.kind == tOp {
		op := p.tok.text
		if op != "==" && op != "!=" && op != "<" && op != ">" && op != "<=" && op != ">=" {
			break
		}
		p.next()
		var r any
		if r, err = p.unary(); err != nil {
			break
		}
		l = compare(op, l, r)
	}
	return l, p.firstErr(err)
}

func (p *parser) unary() (any, error) {
	if p.is("!") {
		p.next()
		v, err := p.unary()
		return !truthy(v), err
	}
	return p.postfix()
}

func (p *parser) firstErr(err error) error {
	if p.err != nil {
		return p.err
	}
	return err
}

func (p *parser) postfix() (any, error) {
	v, err := p.primary()
	for err == nil && p.err == nil {
		switch {
		case p.is("."):
			p.next()
			if p.tok.kind != tIdent && !p.is("*") {
				return nil, fmt.Errorf("%w: property name expected in %q", ErrExpr, p.src)
			}
			v = property(v, p.tok.text)
			p.next()
		case p.is("["):
			p.next()
			var k any
			if k, err = p.or(); err != nil {
				return nil, err
			}
			if !p.is("]") {
				return nil, fmt.Errorf("%w: ] expected in %q", ErrExpr, p.src)
			}
			p.next()
			v = property(v, toString(k))
		default:
			return v, p.firstErr(nil)
		}
	}
	return v, p.firstErr(err)
}

func (p *parser) primary() (any, error) {
	t := p.tok
	switch t.kind {
	case tString:
		p.next()
		return t.text, nil
	case tNumber:
		p.next()
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			if n, ierr := strconv.ParseInt(t.text, 0, 64); ierr == nil {
				return float64(n), nil
			}
			return nil, fmt.Errorf("%w: bad number %q", ErrExpr, t.text)
		}
		return f, nil
	case tIdent:
		p.next()
		switch t.text {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
		if p.is("(") {
			return p.call(t.text)
		}
		return p.ctx.contexts[t.text], nil
	case tOp:
		if t.text == "(" {
			p.next()
			v, err := p.or()
			if err == nil && !p.is(")") {
				err = fmt.Errorf("%w: ) expected in %q", ErrExpr, p.src)
			}
			p.next()
			return v, err
		}
	}
	p.fail("unexpected %q", t.text)
	return nil, p.err
}

func (p *parser) call(name string) (any, error) {
	p.next() // (
	var args []any
	for !p.is(")") {
		v, err := p.or()
		if err != nil {
			return nil, err
		}
		args = append(args, v)
		if p.is(",") {
			p.next()
		} else if !p.is(")") {
			return nil, fmt.Errorf("%w: , or ) expected in %q", ErrExpr, p.src)
		}
	}
	p.next()
	return p.ctx.callFunc(name, args)
}

func (c *exprCtx) callFunc(name string, args []any) (any, error) {
	arg := func(i int) string {
		if i < len(args) {
			return toString(args[i])
		}
		return ""
	}
	switch strings.ToLower(name) {
	case "success":
		return c.status == "success", nil
	case "failure":
		return c.status == "failure", nil
	case "cancelled":
		return c.status == "cancelled", nil
	case "always":
		return true, nil
	case "contains":
		if list, ok := args[0].([]any); ok {
			for _, e := range list {
				if compare("==", e, args[1]).(bool) {
					return true, nil
				}
			}
			return false, nil
		}
		return strings.Contains(strings.ToLower(arg(0)), strings.ToLower(arg(1))), nil
	case "startswith":
		return strings.HasPrefix(strings.ToLower(arg(0)), strings.ToLower(arg(1))), nil
	case "endswith":
		return strings.HasSuffix(strings.ToLower(arg(0)), strings.ToLower(arg(1))), nil
	case "format":
		s := arg(0)
		for i := 1; i < len(args); i++ {
			s = strings.ReplaceAll(s, "{"+strconv.Itoa(i-1)+"}", arg(i))
		}
		return s, nil
	}
	return nil, fmt.Errorf("%w: function %s() is not emulated", ErrExpr, name)
}

// property reads obj.name; GitHub property names are case-insensitive.
func property(obj any, name string) any {
	m, ok := obj.(map[string]any)
	if !ok {
		return nil
	}
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	}
	return true
}

// toString renders a value the way GitHub does inside ${{ }}.
func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	case map[string]any:
		return "Object"
	case []any:
		return "Array"
	}
	return fmt.Sprint(v)
}

func toNumber(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case float64:
		return x
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
		if n, err := strconv.ParseInt(s, 0, 64); err == nil {
			return float64(n)
		}
	}
	return math.NaN()
}

// compare follows GitHub's rules: strings compare case-insensitively; operands of
// different types are both coerced to numbers (so 'true' == true is false).
func compare(op string, l, r any) any {
	ls, lok := l.(string)
	rs, rok := r.(string)
	var c int
	switch {
	case lok && rok:
		c = strings.Compare(strings.ToLower(ls), strings.ToLower(rs))
	default:
		if _, lm := l.(map[string]any); lm {
			if op == "==" || op == "!=" {
				return (op == "==") == (fmt.Sprintf("%p", l) == fmt.Sprintf("%p", r))
			}
			return false
		}
		a, b := toNumber(l), toNumber(r)
		if math.IsNaN(a) || math.IsNaN(b) {
			return op == "!="
		}
		switch {
		case a < b:
			c = -1
		case a > b:
			c = 1
		}
	}
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case ">":
		return c > 0
	case "<=":
		return c <= 0
	}
	return c >= 0
}
