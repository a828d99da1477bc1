package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"
)

// The documented field rules, written here independently of the client.
var (
	filenameRule      = regexp.MustCompile(`^[A-Za-z0-9_.-]+\.csv$`)
	digestRule        = regexp.MustCompile(`^[0-9a-f]{64}$`)
	userPackageIDRule = regexp.MustCompile(`^[0-9]{20}$`)
	partNumberRule    = regexp.MustCompile(`^[1-9][0-9]{0,8}$`)
	packageTypes      = map[string]bool{"USER_PACKAGE_TYPE_EXPOSURE": true, "USER_PACKAGE_TYPE_RISK": true}
	dataTypes         = map[string]bool{"USER_PACKAGE_DATA_TYPE_PHONE": true, "USER_PACKAGE_DATA_TYPE_OPENID": true}
)

func invalidRequest(format string, args ...any) reply {
	return failure(http.StatusBadRequest, "INVALID_REQUEST", format, args...)
}

// upload is one upload session; guarded by Server.mu.
type upload struct {
	id, brandID, filename, digest string
	size, partSize                int64
	partCount                     int
	parts                         map[int][]byte
	merged                        bool
	resourceID                    string
	expandedInto                  map[string]bool
}

// partLength is the exact size part n must have: partSize, or the remainder for the last.
func (u *upload) partLength(n int) int64 {
	return min(u.partSize, u.size-int64(n-1)*u.partSize)
}

func (u *upload) missingParts() []int {
	var missing []int
	for n := 1; n <= u.partCount; n++ {
		if _, ok := u.parts[n]; !ok {
			missing = append(missing, n)
		}
	}
	return missing
}

func (u *upload) assemble() []byte {
	out := make([]byte, 0, u.size)
	for n := 1; n <= u.partCount; n++ {
		out = append(out, u.parts[n]...)
	}
	return out
}

// initiate: POST /brand/marketing/user-package/uploads
func (s *Server) initiate(c *call) reply {
	info, bad := readFileInfo(c.body)
	if bad != nil {
		return *bad
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.filenames[c.brandID][info.filename] {
		return invalidRequest("filename %s was already used by an upload of this brand", info.filename)
	}
	if s.filenames[c.brandID] == nil {
		s.filenames[c.brandID] = map[string]bool{}
	}
	s.filenames[c.brandID][info.filename] = true
	u := &upload{
		id: newUploadID(s.now()), brandID: c.brandID,
		filename: info.filename, digest: info.digest, size: info.size, partSize: s.partSize,
		partCount: int((info.size + s.partSize - 1) / s.partSize), parts: map[int][]byte{}, expandedInto: map[string]bool{},
	}
	s.uploads[u.id] = u
	c.rec.UploadID = u.id
	return success(map[string]any{
		"return_message": "success", "upload_id": u.id,
		"file_part_size": u.partSize, "file_part_count": u.partCount,
	})
}

// fileInfo is initiate's user_package_file_info.
type fileInfo struct {
	filename, digest, packageType, dataType, description string
	size                                                 int64
}

// readFileInfo reads initiate's body and checks it against the documented
// field rules.
func readFileInfo(body []byte) (fileInfo, *reply) {
	top := jsonFields(body, "", "user_package_file_info")
	info := top.object("user_package_file_info")
	info.only("filename", "digest", "package_type", "data_type", "description", "file_size")
	fi := fileInfo{
		filename: info.str("filename"), digest: info.str("digest"),
		packageType: info.str("package_type"), dataType: info.str("data_type"),
		description: info.str("description"), size: info.integer("file_size"),
	}
	if info.err != nil {
		return fi, info.err
	}
	if top.err != nil {
		return fi, top.err
	}
	switch n := utf8.RuneCountInString(fi.description); {
	case len(fi.filename) > 128 || !filenameRule.MatchString(fi.filename):
		return fi, ptr(paramError("filename must be at most 128 letters, digits, '_', '.' or '-' and end in .csv"))
	case !digestRule.MatchString(fi.digest):
		return fi, ptr(paramError("digest must be 64 lowercase hex digits"))
	case !packageTypes[fi.packageType]:
		return fi, ptr(paramError("package_type %q is not a known package type", fi.packageType))
	case !dataTypes[fi.dataType]:
		return fi, ptr(paramError("data_type %q is not a known data type", fi.dataType))
	case n < 15 || n > 128:
		return fi, ptr(paramError("description must be 15 to 128 characters, got %d", n))
	case fi.size <= 0:
		return fi, ptr(paramError("file_size must be greater than 0"))
	}
	return fi, nil
}

// newUploadID has the documented shape: 10 digits of Unix seconds, then 64
// lowercase hex digits, 74 characters in all.
func newUploadID(now time.Time) string {
	return fmt.Sprintf("%010d", now.Unix()) + randomHex(32)
}

// ownedUpload finds an upload of the calling brand; s.mu must be held.
func (s *Server) ownedUpload(c *call, id string) (*upload, *reply) {
	u, ok := s.uploads[id]
	if !ok {
		return nil, ptr(failure(http.StatusNotFound, "NOT_FOUND", "no upload %s", id))
	}
	if u.brandID != c.brandID {
		return nil, ptr(failure(http.StatusForbidden, "NO_AUTH", "upload %s belongs to another brand", id))
	}
	return u, nil
}

// uploadPart: PUT /brand/marketing/user-package/uploads/{upload_id}/{part_number}
func (s *Server) uploadPart(c *call) reply {
	n, digest, bad := readPartMeta(c)
	if bad != nil {
		return *bad
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, bad := s.ownedUpload(c, c.r.PathValue("upload_id"))
	switch {
	case bad != nil:
		return *bad
	case u.merged:
		return invalidRequest("upload %s is already merged", u.id)
	case n > u.partCount:
		return invalidRequest("part_number %d is beyond file_part_count %d", n, u.partCount)
	case int64(len(c.part.file)) != u.partLength(n):
		return invalidRequest("part %d must be exactly %d bytes, got %d", n, u.partLength(n), len(c.part.file))
	case sha256Hex(c.part.file) != digest:
		return invalidRequest("file_meta.digest does not match the part's bytes")
	}
	if stored, ok := u.parts[n]; ok {
		if !bytes.Equal(stored, c.part.file) {
			return invalidRequest("part %d was already uploaded with other content", n)
		}
		rep := success(map[string]string{"return_message": "success"})
		rep.duplicate = true
		return rep
	}
	u.parts[n] = c.part.file
	return success(map[string]string{"return_message": "success"})
}

// readPartMeta reads a part's number from its path and the digest from its
// file_meta, checked against the documented field rules.
func readPartMeta(c *call) (n int, digest string, bad *reply) {
	meta := jsonFields(c.part.meta, "file_meta.", "filename", "digest")
	filename, digest := meta.str("filename"), meta.str("digest")
	if meta.err != nil {
		return 0, "", meta.err
	}
	// The part's filename is checked against the documented character
	// rules only: the documentation does not say it must repeat the upload's.
	if len(filename) > 128 || !filenameRule.MatchString(filename) {
		return 0, "", ptr(paramError("file_meta.filename must be at most 128 letters, digits, '_', '.' or '-' and end in .csv"))
	}
	if !digestRule.MatchString(digest) {
		return 0, "", ptr(paramError("file_meta.digest must be 64 lowercase hex digits"))
	}
	number := c.r.PathValue("part_number")
	if !partNumberRule.MatchString(number) {
		return 0, "", ptr(paramError("part_number must be a number from 1"))
	}
	n, _ = strconv.Atoi(number)
	return n, digest, nil
}

// merge: POST /brand/marketing/user-package/uploads/{upload_id}
// A repeated merge is refused unless Idempotency.Merge is set.
func (s *Server) merge(c *call) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, bad := s.ownedUpload(c, c.r.PathValue("upload_id"))
	if bad != nil {
		return *bad
	}
	answer := func() map[string]string {
		return map[string]string{"resource_id": u.resourceID, "return_message": "success"}
	}
	if u.merged && !s.idempotent.Merge {
		return invalidRequest("upload %s is already merged", u.id)
	}
	if u.merged {
		rep := success(answer())
		rep.duplicate = true
		return rep
	}
	if missing := u.missingParts(); len(missing) > 0 {
		return invalidRequest("parts %v of %d were not uploaded", missing, u.partCount)
	}
	if sha256Hex(u.assemble()) != u.digest {
		return invalidRequest("the merged file's SHA-256 differs from the digest given at initiate")
	}
	u.merged, u.resourceID = true, "RES"+randomHex(16)
	return success(answer())
}

// expand: POST /brand/marketing/user-package/user-packages/{user_package_id}/expand
// A repeated expand of one package with one upload is refused unless
// Idempotency.Expand is set.
func (s *Server) expand(c *call) reply {
	packageID := c.r.PathValue("user_package_id")
	if !userPackageIDRule.MatchString(packageID) {
		return paramError("user_package_id must be exactly 20 digits")
	}
	body := jsonFields(c.body, "", "upload_id")
	uploadID := body.str("upload_id")
	if body.err != nil {
		return *body.err
	}
	c.rec.UploadID = uploadID
	s.mu.Lock()
	defer s.mu.Unlock()
	u, bad := s.ownedUpload(c, uploadID)
	if bad != nil {
		return *bad
	}
	if !u.merged {
		return invalidRequest("upload %s is not merged yet", uploadID)
	}
	again := u.expandedInto[packageID]
	if again && !s.idempotent.Expand {
		return invalidRequest("upload %s is already expanded into user package %s", uploadID, packageID)
	}
	rep := success(map[string]string{"return_message": "success"})
	rep.duplicate = again
	u.expandedInto[packageID] = true
	s.addMembers(packageID, u.assemble())
	return rep
}

// addMembers adds the lines of an expanded upload to the crowd package's
// members, as WeChat Pay would (a member once, whatever the uploads).
func (s *Server) addMembers(packageID string, file []byte) {
	members := s.packages[packageID]
	if members == nil {
		members = map[string]struct{}{}
		s.packages[packageID] = members
	}
	for line := range bytes.Lines(file) {
		if m := string(bytes.TrimRight(line, "\r\n")); m != "" {
			members[m] = struct{}{}
		}
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
