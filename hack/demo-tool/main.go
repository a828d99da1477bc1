// Command demo-tool does the few things hack/demo.sh needs that a stock
// machine may lack a tool for (no python3, mc or jq is assumed):
//
//	demo-tool ports N                      print N free TCP ports on 127.0.0.1
//	demo-tool sa-key DIR                   write sa.key and sa.pub (RSA) for kube-apiserver
//	demo-tool put-raw-export ENDPOINT BUCKET KEY LINES
//	                                       make BUCKET in MinIO and stream a CRM export into
//	                                       KEY: a header row, then LINES raw mobile numbers in
//	                                       mixed forms (MINIO_ROOT_USER/PASSWORD)
//	demo-tool merged URL LINES ID...       check that the merged files of the uploads ID...,
//	                                       fetched from the sandbox's admin URL and put end to
//	                                       end, are the MD5 lines of the export's LINES numbers
//	demo-tool records URL                  summarise the sandbox's /sandbox/records
package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "demo-tool:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: demo-tool ports|sa-key|put-raw-export|merged|records ...")
	}
	switch cmd, args := args[0], args[1:]; {
	case cmd == "ports" && len(args) == 1:
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return err
		}
		return ports(n)
	case cmd == "sa-key" && len(args) == 1:
		return saKey(args[0])
	case cmd == "put-raw-export" && len(args) == 4:
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		return putRawExport(args[0], args[1], args[2], n)
	case cmd == "merged" && len(args) >= 2:
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		return checkMerged(args[0], n, args[2:])
	case cmd == "records" && len(args) == 1:
		return records(args[0])
	}
	return fmt.Errorf("bad arguments: %q", args)
}

// ports holds all N listeners open until every port is chosen, so the N are
// distinct; a port can still be taken before the demo binds it, but on a
// demo machine that is rare.
func ports(n int) error {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

func saKey(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), priv, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// putRawExport streams the export straight into PutObject: it is never held
// whole. Its size is known beforehand by writing it once to a counter.
func putRawExport(endpoint, bucket, key string, lines int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mc, err := minio.New(endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(os.Getenv("MINIO_ROOT_USER"), os.Getenv("MINIO_ROOT_PASSWORD"), ""),
	})
	if err != nil {
		return err
	}
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		if exists, _ := mc.BucketExists(ctx, bucket); !exists {
			return fmt.Errorf("make bucket %s: %w", bucket, err)
		}
	}
	var size byteCounter
	if err := writeRawExport(&size, lines); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRawExport(pw, lines)) }()
	info, err := mc.PutObject(ctx, bucket, key, pr, int64(size), minio.PutObjectOptions{ContentType: "text/csv"})
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	fmt.Printf("uploaded s3://%s/%s: a header row and %d raw mobile numbers (%s), %d bytes, ETag %s\n",
		bucket, key, lines, strings.Join(rawForms, ", "), info.Size, info.ETag)
	return nil
}

// rawForms shows the forms writeRawExport writes numbers in, in turn, as a
// CRM export mixes them.
var rawForms = []string{"13800138000", "8613800138000", "+86 138-0013-8000", "0086 (138) 0013 8000"}

// writeRawExport writes a CRM export: the header row "mobile", then lines
// fake mobile numbers 13800000000, 13800000001, ..., each in the next of
// the rawForms.
func writeRawExport(w io.Writer, lines int) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString("mobile\n")
	for i := range lines {
		d := demoNumber(i)
		switch i % len(rawForms) {
		case 0:
			bw.WriteString(d)
		case 1:
			bw.WriteString("86" + d)
		case 2:
			fmt.Fprintf(bw, "+86 %s-%s-%s", d[:3], d[3:7], d[7:])
		case 3:
			fmt.Fprintf(bw, "0086 (%s) %s %s", d[:3], d[3:7], d[7:])
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// demoNumber is the i-th (from 0) mobile number of the export.
func demoNumber(i int) string { return strconv.Itoa(13800000000 + i) }

type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

// checkMerged fetches the merged file of each upload from the sandbox, in
// order, and checks that together they are the lowercase hex MD5 of the
// export's numbers, one a line, in the export's order: what WeChat Pay
// would hold. The MD5 lines are computed here, independently of the
// operator's hashing.
func checkMerged(adminURL string, lines int, ids []string) error {
	if len(ids) == 0 {
		return errors.New("no upload to check: status.uploads holds no upload id")
	}
	next := 0 // the export's next number
	for i, id := range ids {
		got, err := mergedLines(adminURL, id, next, lines)
		if err != nil {
			return fmt.Errorf("upload %d (%s): %w", i+1, id, err)
		}
		fmt.Printf("  upload %d: %d MD5 lines, for numbers %d to %d of the export\n", i+1, got, next+1, next+got)
		next += got
	}
	if next != lines {
		return fmt.Errorf("the merged files hold %d lines, want %d", next, lines)
	}
	fmt.Printf("  together: the MD5 of all %d numbers, in order: what WeChat Pay holds\n", lines)
	return nil
}

// mergedLines reads one merged file, checking that its lines are the MD5
// lines of the numbers from index first on, and returns how many it holds.
func mergedLines(adminURL, id string, first, total int) (int, error) {
	resp, err := http.Get(strings.TrimSuffix(adminURL, "/") + "/sandbox/uploads/" + id + "/file")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET its merged file: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for ; sc.Scan(); n++ {
		if first+n >= total {
			return 0, fmt.Errorf("more lines than the export has numbers")
		}
		sum := md5.Sum([]byte(demoNumber(first + n)))
		if sc.Text() != hex.EncodeToString(sum[:]) {
			return 0, fmt.Errorf("line %d is not the MD5 of number %d of the export", n+1, first+n+1)
		}
	}
	return n, sc.Err()
}

// record is the part of the sandbox's record of a call worth showing.
type record struct {
	Time       time.Time `json:"time"`
	Endpoint   string    `json:"endpoint"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	UploadID   string    `json:"uploadID"`
	PartNumber int       `json:"partNumber"`
	Status     int       `json:"status"`
	Code       string    `json:"code"`
	Duplicate  bool      `json:"duplicate"`
	Fault      string    `json:"fault"`
}

func records(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var rs []record
	if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	counts := map[string]int{}
	var order []string
	for _, r := range rs {
		path := r.Path
		if len(r.UploadID) > 16 { // WeChat Pay's upload IDs are long: keep the lines short
			// Their start is a time, shared by the uploads of one file: keep the end too.
			path = strings.ReplaceAll(path, r.UploadID, r.UploadID[:8]+"…"+r.UploadID[len(r.UploadID)-6:])
		}
		note := r.Code
		if r.PartNumber > 0 {
			note = fmt.Sprintf("part %d %s", r.PartNumber, note)
		}
		if r.Duplicate {
			note += " (idempotent repeat)"
		}
		if r.Fault != "" {
			note += " (injected fault: " + r.Fault + ")"
		}
		fmt.Printf("  %s  %-11s %3d  %-6s %s  %s\n", r.Time.Format("15:04:05.000"), r.Endpoint, r.Status, r.Method, path, note)
		if counts[r.Endpoint] == 0 {
			order = append(order, r.Endpoint)
		}
		counts[r.Endpoint]++
	}
	fmt.Printf("  %d calls:", len(rs))
	for _, e := range order {
		fmt.Printf(" %s×%d", e, counts[e])
	}
	fmt.Println()
	return nil
}
