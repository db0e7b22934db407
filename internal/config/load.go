package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxConfigBytes bounds the file we read: a config is a few kilobytes.
const maxConfigBytes = 4 << 20

// Error is one configuration problem. Load returns every problem it finds,
// joined with errors.Join; each one is an *Error.
type Error struct {
	File string // as given to Load; "" for a Config built in code
	Line int    // 1-based; 0 when the key is absent from the file
	Key  string // key path, e.g. "winrm.auth" or "allow[2].expires"
	Msg  string // what is wrong and how to fix it
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads the YAML file at path, rejects unknown keys, applies defaults and
// validates the result. It has no side effects (it reads no secret and opens
// nothing but path), so it is safe to call again on SIGHUP. The error, when
// not nil, joins every problem found; each names the file, line and key.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w; pass the path of an existing file with --config", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", path, err)
	}
	if len(data) > maxConfigBytes {
		return nil, &Error{File: path, Msg: fmt.Sprintf("file is larger than %d bytes; this is not a svcwatch config", maxConfigBytes)}
	}
	return Parse(data, path)
}

// Parse is Load on bytes already read; name is used in error messages.
func Parse(data []byte, name string) (*Config, error) {
	d := &decoder{file: name, lines: map[string]int{}, set: map[string]bool{}}
	root, err := d.document(data)
	if err != nil {
		return nil, err
	}
	cfg := &Config{}
	d.decode("", root, reflect.ValueOf(cfg).Elem())
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	v := &validator{file: name, lines: d.lines, set: d.set}
	v.applyDefaults(cfg)
	v.validate(cfg)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return cfg, nil
}

// decoder walks the YAML node tree against the Config struct. Doing the walk
// ourselves (rather than yaml.Decoder with KnownFields) lets every error carry
// the full key path, and records which keys were present and on which line,
// so defaults fill only absent keys and validation errors can point at lines.
type decoder struct {
	file  string
	errs  []error
	lines map[string]int  // key path -> line of the key in the file
	set   map[string]bool // key paths present with a non-null value
	nodes int             // values decoded so far, bounded by maxNodes
}

func (d *decoder) errorf(line int, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// document parses data into the top-level mapping node.
func (d *decoder) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: d.file, Msg: "file is empty; start from config/svcwatch.example.yaml"}
		}
		return nil, &Error{File: d.file, Line: yamlErrorLine(err), Msg: yamlErrorText(err) + "; fix the YAML syntax"}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: d.file, Line: extra.Line, Msg: "more than one YAML document (a second '---'); keep the whole configuration in one document"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, &Error{File: d.file, Msg: "file is empty; start from config/svcwatch.example.yaml"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: d.file, Line: root.Line, Msg: "the top level must be a mapping of sections (state:, directory:, winrm:, ...); see config/svcwatch.example.yaml"}
	}
	return root, nil
}

// yamlErrorLine extracts "line N" from a yaml.v3 syntax error.
func yamlErrorLine(err error) int {
	s := err.Error()
	i := strings.Index(s, "line ")
	if i < 0 {
		return 0
	}
	j := i + len("line ")
	k := j
	for k < len(s) && s[k] >= '0' && s[k] <= '9' {
		k++
	}
	n, _ := strconv.Atoi(s[j:k])
	return n
}

// yamlErrorText strips yaml.v3's "yaml: line N: " prefix.
func yamlErrorText(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(s, "line ") {
		if i := strings.Index(s, ": "); i >= 0 {
			s = s[i+2:]
		}
	}
	return s
}

var durationType = reflect.TypeOf(time.Duration(0))

const (
	maxAliasDepth = 32
	// maxNodes bounds the values decoded, so aliases cannot expand a small
	// file into a huge configuration.
	maxNodes = 200000
)

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxAliasDepth; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode fills v from n. path is the key path of n; a null node leaves v untouched.
func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) {
	n = resolveAlias(n)
	if n == nil || n.Kind == yaml.AliasNode {
		d.errorf(0, path, "alias nesting too deep; write the value out")
		return
	}
	if isNull(n) {
		return
	}
	if d.nodes++; d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.errorf(n.Line, path, "the file expands to more than %d values (aliases?); write a smaller configuration", maxNodes)
		}
		return
	}
	d.set[path] = true
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	switch {
	case v.Kind() == reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(path, n, p.Elem())
		v.Set(p)
	case v.Kind() == reflect.Struct:
		d.mapping(path, n, v)
	case v.Kind() == reflect.Slice:
		d.sequence(path, n, v)
	default:
		d.scalar(path, n, v)
	}
}

func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping of keys, got %s; see config/svcwatch.example.yaml for its shape", kindName(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolveAlias(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.errorf(n.Content[i].Line, path, "a key must be a plain name")
			continue
		}
		key := k.Value
		kp := join(path, key)
		if key == "<<" {
			d.errorf(k.Line, path, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		if prev, dup := seen[key]; dup {
			d.errorf(k.Line, kp, "key given twice (first on line %d); keep one", prev)
			continue
		}
		seen[key] = k.Line
		idx, ok := fields[key]
		if !ok {
			d.errorf(k.Line, kp, "%s", unknownKeyMessage(key, fields))
			continue
		}
		d.lines[kp] = k.Line
		d.decode(kp, val, v.Field(idx))
	}
}

func (d *decoder) sequence(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "expected a list, got %s; write it as [a, b] or as lines starting with '- '", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		return // an empty list is the same as an absent one
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, el := range n.Content {
		ep := fmt.Sprintf("%s[%d]", path, i)
		d.lines[ep] = el.Line
		d.decode(ep, el, s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) scalar(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "expected a single value, got %s", kindName(n))
		return
	}
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(n.Value)
		if err != nil || (n.Tag != "!!str" && n.Value != "0") {
			d.errorf(n.Line, path, "%q is not a duration; write a number with a unit, e.g. 90s, 5m, 1h30m", n.Value)
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.Int:
		i, err := strconv.Atoi(n.Value)
		if err != nil || n.Tag != "!!int" {
			d.errorf(n.Line, path, "%q is not a whole number; write digits only, e.g. 500", n.Value)
			return
		}
		v.SetInt(int64(i))
	case v.Kind() == reflect.Bool:
		if n.Tag != "!!bool" {
			d.errorf(n.Line, path, "%q is not true or false", n.Value)
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.errorf(n.Line, path, "%q is not true or false", n.Value)
			return
		}
		v.SetBool(b)
	case v.Kind() == reflect.String:
		v.SetString(n.Value)
	default:
		d.errorf(n.Line, path, "internal: unsupported field type %s", v.Type())
	}
}

// yamlFields maps yaml key names to struct field indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

func unknownKeyMessage(key string, fields map[string]int) string {
	_, hasEnv := fields[key+"_env"]
	_, hasFile := fields[key+"_file"]
	if hasEnv && hasFile {
		return fmt.Sprintf("secrets are not accepted in the config file; put the value in an environment variable and name it with %s_env, or in a file readable only by svcwatch and give its path with %s_file", key, key)
	}
	names := make([]string, 0, len(fields))
	best, bestDist := "", 3
	for name := range fields {
		names = append(names, name)
		if dist := editDistance(key, name); dist < bestDist || (dist == bestDist && name < best) {
			best, bestDist = name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown key; did you mean %s?", best)
	}
	sort.Strings(names)
	return "unknown key; the keys allowed here are " + strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
