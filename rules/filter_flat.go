package rules

import (
	"encoding/json"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// parseFlatFilter parses the common shape of lookup filters by hand, without the
// combinator parser (~3,000 allocations per filter): comparisons `attr op value` or
// `attr.sub op value` (or `attr pr`) joined by and / or, without parentheses, not, value
// paths, URIs or escapes. It builds the AST filter.ParseFilterNumber builds — and binds
// tighter than or, both left-associative, operators lower-cased, strings as written
// between the quotes, numbers as json.Number — and reports ok false for anything else,
// which then goes to the parser. FuzzFlatFilter checks it against the parser.
func parseFlatFilter(s string) (filter.Expression, bool) {
	if len(s) > maxFilterLen {
		return nil, false
	}
	var ors, ands []filter.Expression
	for i := 0; ; {
		cmp, n, ok := parseFlatComparison(s[i:])
		if !ok {
			return nil, false
		}
		ands = append(ands, cmp)
		i += n
		switch {
		case i == len(s):
			ors = append(ors, chainExpr(ands, filter.AND))
			return chainExpr(ors, filter.OR), true
		case i+5 <= len(s) && s[i] == ' ' && strings.EqualFold(s[i+1:i+4], "and") && s[i+4] == ' ':
			i += 5
		case i+4 <= len(s) && s[i] == ' ' && strings.EqualFold(s[i+1:i+3], "or") && s[i+3] == ' ':
			ors = append(ors, chainExpr(ands, filter.AND))
			ands = nil
			i += 4
		default:
			return nil, false
		}
	}
}

// chainExpr joins xs left-associatively, as the parser does.
func chainExpr(xs []filter.Expression, op filter.LogicalOperator) filter.Expression {
	if len(xs) == 1 {
		return xs[0]
	}
	e := &filter.LogicalExpression{Left: xs[0], Right: xs[1], Operator: op}
	for _, x := range xs[2:] {
		e = &filter.LogicalExpression{Left: e, Right: x, Operator: op}
	}
	return e
}

// parseFlatComparison parses one comparison at the start of s and returns its length.
func parseFlatComparison(s string) (*filter.AttributeExpression, int, bool) {
	name, i := flatName(s, 0)
	if i == 0 || isFlatKeyword(name) {
		return nil, 0, false
	}
	ap := filter.AttributePath{AttributeName: name}
	if i < len(s) && s[i] == '.' {
		sub, j := flatName(s, i+1)
		if j == i+1 {
			return nil, 0, false
		}
		ap.SubAttribute = &sub
		i = j
	}
	if i+3 > len(s) || s[i] != ' ' {
		return nil, 0, false
	}
	op := strings.ToLower(s[i+1 : i+3])
	i += 3
	switch op {
	case "pr":
		if i < len(s) && s[i] != ' ' {
			return nil, 0, false
		}
		return &filter.AttributeExpression{AttributePath: ap, Operator: filter.PR}, i, true
	case "eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le":
	default:
		return nil, 0, false
	}
	if i+1 >= len(s) || s[i] != ' ' {
		return nil, 0, false
	}
	i++
	var (
		v   any
		end int
	)
	switch c := s[i]; {
	case c == '"':
		j := i + 1
		for ; j < len(s) && s[j] != '"'; j++ {
			if b := s[j]; b < 0x20 || b > 0x7e || b == '\\' {
				return nil, 0, false
			}
		}
		if j == len(s) {
			return nil, 0, false
		}
		v, end = s[i+1:j], j+1
	case c == '-' || c >= '0' && c <= '9':
		j := i
		if c == '-' {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k == j || k-j > 15 || s[j] == '0' && k-j > 1 || c == '-' && s[j] == '0' {
			return nil, 0, false
		}
		v, end = json.Number(s[i:k]), k
	case strings.HasPrefix(s[i:], "true"):
		v, end = true, i+4
	case strings.HasPrefix(s[i:], "false"):
		v, end = false, i+5
	case strings.HasPrefix(s[i:], "null"):
		v, end = nil, i+4
	default:
		return nil, 0, false
	}
	if end < len(s) && s[end] != ' ' {
		return nil, 0, false
	}
	return &filter.AttributeExpression{AttributePath: ap, Operator: filter.CompareOperator(op), CompareValue: v}, end, true
}

// flatName reads an ATTRNAME (ALPHA *(ALPHA / DIGIT / "-" / "_")) at s[i:] and returns
// it and the index after it (i when there is none).
func flatName(s string, i int) (string, int) {
	j := i
	for j < len(s) {
		c := s[j]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (j == i || !(c >= '0' && c <= '9' || c == '-' || c == '_')) {
			break
		}
		j++
	}
	return s[i:j], j
}

func isFlatKeyword(name string) bool {
	return strings.EqualFold(name, "and") || strings.EqualFold(name, "or") || strings.EqualFold(name, "not")
}
