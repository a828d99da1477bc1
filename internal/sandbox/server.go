package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

var publicKeyIDPattern = regexp.MustCompile(`^PUB_KEY_ID_[0-9]+$`)

// signatureType is the Wechatpay-Signature-Type of the brand API's answers.
const signatureType = "WECHATPAY-BRAND-SHA256-RSA2048"

// Server simulates the brand API. Its state lives in memory.
type Server struct {
	key         *rsa.PrivateKey
	publicKeyID string
	brands      map[string]brand
	partSize    int64
	window      time.Duration
	now         func() time.Time

	mu         sync.Mutex
	faults     *faultPlan
	idempotent Idempotency
	uploads    map[string]*upload
	packages   map[string]map[string]struct{} // crowd package ID → the lines it was expanded with
	filenames  map[string]map[string]bool     // brand ID → filenames used
	nonces     map[string]time.Time           // brand ID + "\x00" + nonce → request time
	records    []Record
	hook       Hook
	expanding  packageCounts // expands of each package being handled now
	mostAtOnce packageCounts // the most expands of each package handled at once
}

// packageCounts counts per crowd package ID.
type packageCounts map[string]int

type brand struct {
	serial string
	key    *rsa.PublicKey
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if !publicKeyIDPattern.MatchString(cfg.PublicKeyID) {
		return nil, fmt.Errorf("sandbox config: publicKeyID %q must be PUB_KEY_ID_ followed by digits", cfg.PublicKeyID)
	}
	key, err := wechatpay.ParsePrivateKeyPEM([]byte(cfg.PrivateKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("sandbox config: private key: %w", err)
	}
	brands, err := parseBrands(cfg.Brands)
	if err != nil {
		return nil, err
	}
	s := &Server{
		key: key, publicKeyID: cfg.PublicKeyID, brands: brands,
		partSize: cfg.PartSize, window: time.Duration(cfg.ClockWindowSeconds) * time.Second, now: cfg.Now,
		uploads: map[string]*upload{}, packages: map[string]map[string]struct{}{}, filenames: map[string]map[string]bool{}, nonces: map[string]time.Time{},
		expanding: packageCounts{}, mostAtOnce: packageCounts{},
		idempotent: cfg.Idempotent,
	}
	if s.partSize == 0 {
		s.partSize = DefaultPartSize
	}
	if s.partSize < 0 || s.partSize > MaxPartSize {
		return nil, fmt.Errorf("sandbox config: partSize %d must be 1 to %d bytes", s.partSize, MaxPartSize)
	}
	if s.window <= 0 {
		s.window = DefaultClockWindow
	}
	if s.now == nil {
		s.now = time.Now
	}
	for e, f := range cfg.Faults {
		if !e.valid() {
			return nil, fmt.Errorf("sandbox config: faults: unknown endpoint %q", e)
		}
		if err := f.validate(); err != nil {
			return nil, fmt.Errorf("sandbox config: faults of %s: %w", e, err)
		}
	}
	s.faults = newFaultPlan(cfg.Seed, cfg.Faults)
	return s, nil
}

func parseBrands(list []BrandConfig) (map[string]brand, error) {
	if len(list) == 0 {
		return nil, errors.New("sandbox config: no brands")
	}
	brands := map[string]brand{}
	for _, b := range list {
		if b.BrandID == "" || b.CertificateSerialNo == "" {
			return nil, errors.New("sandbox config: a brand needs brandID and certificateSerialNo")
		}
		if _, dup := brands[b.BrandID]; dup {
			return nil, fmt.Errorf("sandbox config: brand %s listed twice", b.BrandID)
		}
		key, err := wechatpay.ParsePublicKeyPEM([]byte(b.PublicKeyPEM))
		if err != nil {
			return nil, fmt.Errorf("sandbox config: brand %s public key: %w", b.BrandID, err)
		}
		brands[b.BrandID] = brand{serial: b.CertificateSerialNo, key: key}
	}
	return brands, nil
}

// PublicKeyID is the WeChat Pay public key ID the sandbox signs answers with.
func (s *Server) PublicKeyID() string { return s.publicKeyID }

// SetIdempotency switches idempotent merge and expand on or off at run time.
func (s *Server) SetIdempotency(i Idempotency) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idempotent = i
}

// Idempotency reports which repeats are currently answered 200.
func (s *Server) Idempotency() Idempotency {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idempotent
}

// Handler serves the four API endpoints. Every answer carries Request-ID.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.registerAPI(mux)
	return withRequestID(mux)
}

func (s *Server) registerAPI(mux *http.ServeMux) {
	mux.Handle("POST /brand/marketing/user-package/uploads", s.endpoint(EndpointInitiate, jsonBody, s.initiate))
	mux.Handle("PUT /brand/marketing/user-package/uploads/{upload_id}/{part_number}", s.endpoint(EndpointUploadPart, multipartBody, s.uploadPart))
	mux.Handle("POST /brand/marketing/user-package/uploads/{upload_id}", s.endpoint(EndpointMerge, noBody, s.merge))
	mux.Handle("POST /brand/marketing/user-package/user-packages/{user_package_id}/expand", s.endpoint(EndpointExpand, jsonBody, s.expand))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.write(w, failure(http.StatusNotFound, "NOT_FOUND", "no such API"))
	})
}

// requestID is the Request-ID of an answer: WeChat Pay's IDs of failed calls
// end in -<HTTP status>, which the sandbox copies so clients meet them here.
func requestID(base string, status int) string {
	if status < 400 {
		return base
	}
	return base + "-" + strconv.Itoa(status)
}

func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(wechatpay.HeaderRequestID, randomHex(16))
		next.ServeHTTP(w, r)
	})
}

// reply is an answer before it is signed and written.
type reply struct {
	status    int
	body      any // JSON; nil sends no body
	code      string
	header    http.Header
	duplicate bool
}

func success(body any) reply { return reply{status: http.StatusOK, body: body} }

func failure(status int, code, format string, args ...any) reply {
	return reply{status: status, code: code, body: map[string]string{"code": code, "message": fmt.Sprintf(format, args...)}}
}

// call is an authenticated request handed to an endpoint.
type call struct {
	brandID string
	r       *http.Request
	body    []byte      // JSON endpoints: the raw body
	part    *partUpload // upload part: the decoded multipart body
	rec     *Record     // lets an endpoint note the upload it touched
}

// endpoint runs the common pipeline: read the body, authenticate, inject a
// fault, process, append the call to Records, then answer (or drop the
// connection).
func (s *Server) endpoint(e Endpoint, read bodyReader, process func(*call) reply) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := Record{
			Time: s.now(), RequestID: w.Header().Get(wechatpay.HeaderRequestID), Endpoint: e,
			Method: r.Method, Path: r.URL.Path, UploadID: r.PathValue("upload_id"),
			UserPackageID: r.PathValue("user_package_id"),
		}
		rec.PartNumber, _ = strconv.Atoi(r.PathValue("part_number"))
		leave := s.enter(e, rec.UserPackageID)
		rep, fault := s.handle(e, w, r, read, process, &rec)
		leave()
		if fault == faultDropped {
			panic(errDropped)
		}
		rec.Status, rec.Code, rec.Duplicate, rec.Fault = rep.status, rep.code, rep.duplicate, fault
		rec.RequestID = requestID(rec.RequestID, rep.status)
		s.appendRecord(rec)
		if fault == FaultLostResponse {
			panic(http.ErrAbortHandler) // closes the connection (HTTP/1) or resets the stream (HTTP/2) unanswered
		}
		s.write(w, rep)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		s.runHook(e, rec, PhaseAnswered)
	})
}

func (s *Server) handle(e Endpoint, w http.ResponseWriter, r *http.Request, read bodyReader, process func(*call) reply, rec *Record) (reply, Fault) {
	c := &call{r: r, rec: rec}
	if !acceptsJSON(r.Header.Values("Accept")) {
		return paramError("Accept must be application/json"), ""
	}
	signed, rep, ok := read(w, r, c)
	if !ok {
		return rep, ""
	}
	if rep, ok := s.authenticate(r, signed, rec); !ok {
		return rep, ""
	}
	c.brandID = rec.BrandID
	s.mu.Lock()
	fault, settings := s.faults.next(e), s.faults.random[e]
	s.mu.Unlock()
	if !sleep(r, time.Duration(settings.LatencyMillis)*time.Millisecond) {
		return failure(499, "CANCELED", "client went away"), ""
	}
	if fault != "" && fault != FaultLostResponse {
		return faultReply(fault, settings.RetryAfterSeconds), fault
	}
	if s.runHook(e, *rec, PhaseArrived) {
		return reply{}, faultDropped
	}
	return process(c), fault
}

func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// write signs and sends a reply: Wechatpay-Timestamp, -Nonce, -Signature,
// -Serial and -Signature-Type over TIMESTAMP\nNONCE\nBODY\n.
func (s *Server) write(w http.ResponseWriter, rep reply) {
	var body []byte
	if rep.body != nil {
		var err error
		if body, err = json.Marshal(rep.body); err != nil {
			http.Error(w, "encode answer", http.StatusInternalServerError)
			return
		}
	}
	timestamp := strconv.FormatInt(s.now().Unix(), 10)
	nonce, err := wechatpay.NewNonce()
	if err != nil {
		http.Error(w, "nonce", http.StatusInternalServerError)
		return
	}
	signature, err := wechatpay.Sign(s.key, wechatpay.ResponseMessage(timestamp, nonce, body))
	if err != nil {
		http.Error(w, "sign", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	h.Set(wechatpay.HeaderTimestamp, timestamp)
	h.Set(wechatpay.HeaderNonce, nonce)
	h.Set(wechatpay.HeaderSignature, signature)
	h.Set(wechatpay.HeaderSerial, s.publicKeyID)
	h.Set(wechatpay.HeaderSignatureType, signatureType)
	h.Set(wechatpay.HeaderRequestID, requestID(h.Get(wechatpay.HeaderRequestID), rep.status))
	if body != nil {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(body)
}

// acceptsJSON is true when the Accept header lists application/json (with or
// without parameters); a missing header or only */* is refused ([inferred]).
func acceptsJSON(values []string) bool {
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if mediaType, _, err := mime.ParseMediaType(strings.TrimSpace(item)); err == nil && mediaType == "application/json" {
				return true
			}
		}
	}
	return false
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// readAll reads at most limit bytes of a body.
func readAll(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	return data, err == nil
}
