package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"unicode/utf8"
)

const maxJSONBody = 64 << 10

func paramError(format string, args ...any) reply {
	return failure(http.StatusBadRequest, "PARAM_ERROR", format, args...)
}

// bodyReader reads an endpoint's body into c and returns the bytes that were
// signed (the BODY line of the string to sign).
type bodyReader func(w http.ResponseWriter, r *http.Request, c *call) (signed []byte, rep reply, ok bool)

func jsonBody(w http.ResponseWriter, r *http.Request, c *call) ([]byte, reply, bool) {
	if mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mediaType != "application/json" {
		return nil, paramError("Content-Type must be application/json"), false
	}
	data, ok := readAll(w, r, maxJSONBody)
	if !ok {
		return nil, paramError("body unreadable or larger than %d bytes", maxJSONBody), false
	}
	c.body = data
	return data, reply{}, true
}

func noBody(w http.ResponseWriter, r *http.Request, _ *call) ([]byte, reply, bool) {
	data, ok := readAll(w, r, maxJSONBody)
	if !ok || len(data) > 0 {
		return nil, paramError("this call takes no body"), false
	}
	return nil, reply{}, true
}

// partUpload is a decoded multipart part upload.
type partUpload struct {
	meta []byte
	file []byte
}

// multipartBody streams a multipart/form-data body holding exactly the
// fields file_meta (signed) and file.
func multipartBody(w http.ResponseWriter, r *http.Request, c *call) ([]byte, reply, bool) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return nil, paramError("Content-Type must be multipart/form-data with a boundary"), false
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, MaxPartSize+1<<20), params["boundary"])
	fields := map[string][]byte{}
	for {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, paramError("malformed multipart body"), false
		}
		name := p.FormName()
		limit := map[string]int64{"file_meta": 4 << 10, "file": MaxPartSize}[name]
		if limit == 0 {
			return nil, paramError("unexpected form field %q, want file_meta and file", name), false
		}
		if _, dup := fields[name]; dup {
			return nil, paramError("form field %q sent twice", name), false
		}
		data, err := io.ReadAll(io.LimitReader(p, limit+1))
		if err != nil {
			return nil, paramError("malformed multipart body"), false
		}
		if int64(len(data)) > limit {
			return nil, paramError("form field %q is larger than %d bytes", name, limit), false
		}
		fields[name] = data
	}
	for _, name := range []string{"file_meta", "file"} {
		if _, ok := fields[name]; !ok {
			return nil, paramError("form field %q is missing", name), false
		}
	}
	c.part = &partUpload{meta: fields["file_meta"], file: fields["file"]}
	return c.part.meta, reply{}, true
}

// decodeJSON parses a JSON object the way the API's rules say: no null
// anywhere, only 1-3 byte UTF-8 characters (raw or \u-escaped), no key twice
// in one object, nothing after it.
func decodeJSON(data []byte) (map[string]any, *reply) {
	if !utf8.Valid(data) {
		return nil, ptr(paramError("body is not valid UTF-8"))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, ptr(paramError("body is not a JSON object"))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, ptr(paramError("data after the JSON object"))
	}
	if path, problem := checkValues(obj, ""); problem != "" {
		return nil, ptr(paramError("%s: %s", path, problem))
	}
	// Decode kept the last of two equal keys silently; WeChat Pay's parser
	// may keep the first, so a body with both means two different things.
	if path, dup := duplicateKey(json.NewDecoder(bytes.NewReader(data)), ""); dup {
		return nil, ptr(paramError("duplicate key %s", strings.TrimPrefix(path, ".")))
	}
	return obj, nil
}

// duplicateKey walks one JSON value already known to be valid and returns
// the path of the first key that appears twice in the same object.
func duplicateKey(dec *json.Decoder, path string) (string, bool) {
	tok, err := dec.Token()
	if err != nil {
		return "", false
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return "", false
			}
			key, _ := keyTok.(string)
			if seen[key] {
				return path + "." + key, true
			}
			seen[key] = true
			if p, dup := duplicateKey(dec, path+"."+key); dup {
				return p, true
			}
		}
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if p, dup := duplicateKey(dec, fmt.Sprintf("%s[%d]", path, i)); dup {
				return p, true
			}
		}
	default:
		return "", false // a scalar
	}
	_, _ = dec.Token() // the closing delimiter
	return "", false
}

// checkValues walks decoded JSON for null and 4-byte characters.
func checkValues(v any, path string) (string, string) {
	switch v := v.(type) {
	case nil:
		return path, "null is not allowed"
	case string:
		if !within3Bytes(v) {
			return path, "4-byte UTF-8 characters (such as emoji) are not allowed"
		}
	case map[string]any:
		for k, child := range v {
			if !within3Bytes(k) {
				return path, "4-byte UTF-8 characters are not allowed in keys"
			}
			if p, problem := checkValues(child, path+"."+k); problem != "" {
				return p, problem
			}
		}
	case []any:
		for i, child := range v {
			if p, problem := checkValues(child, fmt.Sprintf("%s[%d]", path, i)); problem != "" {
				return p, problem
			}
		}
	}
	return "", ""
}

func within3Bytes(s string) bool {
	for _, r := range s {
		if r > 0xFFFF {
			return false
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }

// fields reads typed fields of a JSON object, keeping the first problem.
type fields struct {
	obj    map[string]any
	prefix string
	err    *reply
}

// jsonFields reads the fields of raw, a JSON object that may hold only
// names, under prefix (e.g. "file_meta."); a body that is no such object
// is its first problem.
func jsonFields(raw []byte, prefix string, names ...string) *fields {
	obj, bad := decodeJSON(raw)
	f := &fields{obj: obj, prefix: prefix, err: bad}
	f.only(names...)
	return f
}

func (f *fields) value(name string) (any, bool) {
	if f.err != nil {
		return nil, false
	}
	v, ok := f.obj[name]
	if !ok {
		f.err = ptr(paramError("%s%s is required", f.prefix, name))
	}
	return v, ok
}

func (f *fields) str(name string) string {
	v, ok := f.value(name)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.err = ptr(paramError("%s%s must be a string", f.prefix, name))
	}
	return s
}

func (f *fields) integer(name string) int64 {
	v, ok := f.value(name)
	if !ok {
		return 0
	}
	n, isNumber := v.(json.Number)
	i, err := n.Int64()
	if !isNumber || err != nil {
		f.err = ptr(paramError("%s%s must be an integer", f.prefix, name))
	}
	return i
}

func (f *fields) object(name string) *fields {
	v, ok := f.value(name)
	child := &fields{prefix: f.prefix + name + ".", err: f.err}
	if !ok {
		return child
	}
	if child.obj, ok = v.(map[string]any); !ok {
		f.err = ptr(paramError("%s%s must be an object", f.prefix, name))
		child.err = f.err
	}
	return child
}

// only refuses fields other than names: the sandbox is stricter than
// needed so a client typo shows up ([inferred]).
func (f *fields) only(names ...string) {
	if f.err != nil {
		return
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	for k := range f.obj {
		if !known[k] {
			f.err = ptr(paramError("unknown field %s%s", f.prefix, k))
			return
		}
	}
}
