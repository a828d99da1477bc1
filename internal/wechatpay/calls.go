package wechatpay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// Enum values of the initiate upload body.
const (
	PackageTypeExposure = "USER_PACKAGE_TYPE_EXPOSURE" // targeted-exposure package
	PackageTypeRisk     = "USER_PACKAGE_TYPE_RISK"     // risk-user package
	DataTypePhone       = "USER_PACKAGE_DATA_TYPE_PHONE"
	DataTypeOpenID      = "USER_PACKAGE_DATA_TYPE_OPENID"
)

// Field limits of the brand API.
const (
	MaxFilenameLength    = 128
	MinDescriptionLength = 15 // characters, not bytes
	MaxDescriptionLength = 128
	MaxUploadIDLength    = 128
	UserPackageIDLength  = 20
	MaxPartSize          = 20 << 20 // a part is at most 20 MB
	// MaxPartCount bounds the parts of one upload: a caller allocates its
	// set of acknowledged parts from the count, so a plan (an answer, or one
	// edited into status) must not make it allocate at will.
	MaxPartCount = 10_000
)

const uploadsPath = "/brand/marketing/user-package/uploads"

var (
	filenamePattern      = regexp.MustCompile(`^[A-Za-z0-9_.-]+\.csv$`)
	digestPattern        = regexp.MustCompile(`^[0-9a-f]{64}$`)
	userPackageIDPattern = regexp.MustCompile(`^[0-9]{20}$`)
)

// API is the brand API as its callers see it. *Client implements it;
// decorators (metrics) and test doubles wrap or replace it.
type API interface {
	InitiateUpload(ctx context.Context, r InitiateUploadRequest) (*InitiateUploadResponse, error)
	UploadPart(ctx context.Context, p Part) (*PartResult, error)
	MergeParts(ctx context.Context, uploadID string) (*MergeResult, error)
	ExpandPackage(ctx context.Context, userPackageID, uploadID string) (*ExpandResult, error)
}

var _ API = (*Client)(nil)

// InitiateUploadRequest describes the whole file to upload.
type InitiateUploadRequest struct {
	Filename    string
	Digest      string // sha256 of the whole file, 64 lowercase hex
	PackageType string // PackageTypeExposure or PackageTypeRisk
	DataType    string // DataTypePhone or DataTypeOpenID
	Description string // 15 to 128 characters, no 4-byte UTF-8
	FileSize    int64
}

// InitiateUploadResponse is the part plan WeChat Pay answers with; parts
// must follow it exactly.
type InitiateUploadResponse struct {
	ReturnMessage string `json:"return_message"`
	UploadID      string `json:"upload_id"`
	FilePartSize  int64  `json:"file_part_size"`
	FilePartCount int64  `json:"file_part_count"`
}

// MergeResult is the verified answer to a merge.
type MergeResult struct {
	// ResourceID is the merged file's ID. Its field name is not documented:
	// it is resource_id if present, else the first other string field ending
	// in _id (by name) that is not upload_id; empty when there is none.
	ResourceID string
	Raw        map[string]any
}

// ExpandResult is the verified answer to an expand; its fields are not documented.
type ExpandResult struct {
	Raw map[string]any
}

// Validate applies the API's own field rules, so a bad spec fails before any call.
func (r InitiateUploadRequest) Validate() error {
	if err := validateFilename(r.Filename); err != nil {
		return err
	}
	if err := validateDigest("digest", r.Digest); err != nil {
		return err
	}
	if r.PackageType != PackageTypeExposure && r.PackageType != PackageTypeRisk {
		return &ValidationError{Field: "package_type", Reason: fmt.Sprintf("must be %s or %s", PackageTypeExposure, PackageTypeRisk)}
	}
	if r.DataType != DataTypePhone && r.DataType != DataTypeOpenID {
		return &ValidationError{Field: "data_type", Reason: fmt.Sprintf("must be %s or %s", DataTypePhone, DataTypeOpenID)}
	}
	if err := ValidateDescription(r.Description); err != nil {
		return err
	}
	if r.FileSize <= 0 {
		return &ValidationError{Field: "file_size", Reason: "must be greater than 0"}
	}
	return nil
}

func validateFilename(name string) error {
	if len(name) > MaxFilenameLength {
		return &ValidationError{Field: "filename", Reason: fmt.Sprintf("longer than %d characters", MaxFilenameLength)}
	}
	if !filenamePattern.MatchString(name) {
		return &ValidationError{Field: "filename", Reason: fmt.Sprintf("%q must be letters, digits, '_', '.' or '-' and end in .csv", name)}
	}
	return nil
}

func validateDigest(field, digest string) error {
	if !digestPattern.MatchString(digest) {
		return &ValidationError{Field: field, Reason: "must be a SHA-256 of 64 lowercase hex digits"}
	}
	return nil
}

// ValidateDescription checks 15 to 128 characters of 1-3 byte UTF-8.
func ValidateDescription(d string) error {
	if !utf8.ValidString(d) {
		return &ValidationError{Field: "description", Reason: "is not valid UTF-8"}
	}
	n := utf8.RuneCountInString(d)
	if n < MinDescriptionLength || n > MaxDescriptionLength {
		return &ValidationError{Field: "description", Reason: fmt.Sprintf("has %d characters, want %d to %d", n, MinDescriptionLength, MaxDescriptionLength)}
	}
	for _, r := range d {
		if utf8.RuneLen(r) > 3 {
			return &ValidationError{Field: "description", Reason: "holds a 4-byte UTF-8 character (such as an emoji), which the API refuses"}
		}
	}
	return nil
}

func validateUploadID(id string) error {
	if id == "" || len(id) > MaxUploadIDLength {
		return &ValidationError{Field: "upload_id", Reason: fmt.Sprintf("must be 1 to %d characters", MaxUploadIDLength)}
	}
	return nil
}

// InitiateUpload opens an upload session for a whole file and returns its part plan.
func (cl *Client) InitiateUpload(ctx context.Context, r InitiateUploadRequest) (*InitiateUploadResponse, error) {
	const op = "initiate upload"
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	type fileInfo struct {
		Filename    string `json:"filename"`
		Digest      string `json:"digest"`
		PackageType string `json:"package_type"`
		DataType    string `json:"data_type"`
		Description string `json:"description"`
		FileSize    int64  `json:"file_size"`
	}
	body, err := json.Marshal(struct {
		Info fileInfo `json:"user_package_file_info"`
	}{fileInfo(r)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	raw, err := cl.do(ctx, call{op: op, method: "POST", path: uploadsPath, signedBody: body, contentType: "application/json"})
	if err != nil {
		return nil, err
	}
	var resp InitiateUploadResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("%s: decode answer: %w", op, err)
	}
	if err := resp.checkPlan(r.FileSize); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return &resp, nil
}

// checkPlan refuses an answer that later calls could not use: one without
// an upload_id they accept, or whose part plan CheckPlan refuses.
func (r *InitiateUploadResponse) checkPlan(fileSize int64) error {
	switch {
	case r.UploadID == "" || r.FilePartSize <= 0 || r.FilePartCount <= 0:
		return errors.New("answer lacks upload_id, file_part_size or file_part_count")
	case len(r.UploadID) > MaxUploadIDLength:
		return fmt.Errorf("answer's upload_id has %d characters, more than %d", len(r.UploadID), MaxUploadIDLength)
	}
	if err := CheckPlan(r.FilePartSize, r.FilePartCount, fileSize); err != nil {
		return fmt.Errorf("answer's %w", err)
	}
	return nil
}

// CheckPlan refuses a part plan that cannot describe a file of fileSize
// bytes: partCount parts (1 to MaxPartCount) of partSize bytes (1 to
// MaxPartSize), only the last one shorter.
func CheckPlan(partSize, partCount, fileSize int64) error {
	switch {
	case partSize <= 0 || partCount <= 0 || fileSize <= 0:
		return fmt.Errorf("part plan of %d parts of %d bytes for a file of %d bytes is empty", partCount, partSize, fileSize)
	case partSize > MaxPartSize:
		return fmt.Errorf("part plan of %d parts of %d bytes has parts larger than %d bytes", partCount, partSize, MaxPartSize)
	case partCount > MaxPartCount:
		return fmt.Errorf("part plan of %d parts of %d bytes has more than %d parts", partCount, partSize, MaxPartCount)
	case partCount != (fileSize-1)/partSize+1:
		return fmt.Errorf("part plan of %d parts of %d bytes does not fit the file's %d bytes", partCount, partSize, fileSize)
	}
	return nil
}

// MergeParts merges the uploaded parts; call it only after every part succeeded.
func (cl *Client) MergeParts(ctx context.Context, uploadID string) (*MergeResult, error) {
	const op = "merge parts"
	if err := validateUploadID(uploadID); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	fields, err := cl.doObject(ctx, call{op: op, method: "POST", path: uploadsPath + "/" + url.PathEscape(uploadID)})
	if err != nil {
		return nil, err
	}
	return &MergeResult{ResourceID: resourceID(fields), Raw: fields}, nil
}

// ExpandPackage adds a merged upload (by its upload_id, not the merge's
// resource ID) to the crowd package userPackageID (20 digits).
func (cl *Client) ExpandPackage(ctx context.Context, userPackageID, uploadID string) (*ExpandResult, error) {
	const op = "expand package"
	if !userPackageIDPattern.MatchString(userPackageID) {
		return nil, fmt.Errorf("%s: %w", op, &ValidationError{Field: "user_package_id", Reason: fmt.Sprintf("must be exactly %d digits", UserPackageIDLength)})
	}
	if err := validateUploadID(uploadID); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	body, err := json.Marshal(map[string]string{"upload_id": uploadID})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	path := "/brand/marketing/user-package/user-packages/" + userPackageID + "/expand"
	fields, err := cl.doObject(ctx, call{op: op, method: "POST", path: path, signedBody: body, contentType: "application/json"})
	if err != nil {
		return nil, err
	}
	return &ExpandResult{Raw: fields}, nil
}

// doObject sends c and reads its answer, which the API does not document,
// as a JSON object.
func (cl *Client) doObject(ctx context.Context, c call) (map[string]any, error) {
	raw, err := cl.do(ctx, c)
	if err != nil {
		return nil, err
	}
	fields, err := decodeObject(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.op, err)
	}
	return fields, nil
}

// decodeObject reads an undocumented answer; an empty body (204) is an empty object.
func decodeObject(raw []byte) (map[string]any, error) {
	fields := map[string]any{}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return fields, nil
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	return fields, nil
}

func resourceID(fields map[string]any) string {
	if id, ok := fields["resource_id"].(string); ok && id != "" {
		return id
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if id, ok := fields[name].(string); ok && id != "" && name != "upload_id" && strings.HasSuffix(name, "_id") {
			return id
		}
	}
	return ""
}
