// Command demo-tool does the few things hack/demo.sh needs that a stock
// machine may lack a tool for (no python3, mc or jq is assumed):
//
//	demo-tool ports N                      print N free TCP ports on 127.0.0.1
//	demo-tool sa-key DIR                   write sa.key and sa.pub (RSA) for kube-apiserver
//	demo-tool put-csv ENDPOINT BUCKET KEY LINES
//	                                       make BUCKET in MinIO and stream LINES MD5-hashed
//	                                       mobile numbers into KEY (MINIO_ROOT_USER/PASSWORD)
//	demo-tool records URL                  summarise the sandbox's /sandbox/records
package main

import (
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
		return errors.New("usage: demo-tool ports|sa-key|put-csv|records ...")
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
	case cmd == "put-csv" && len(args) == 4:
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		return putCSV(args[0], args[1], args[2], n)
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

// putCSV streams the file straight into PutObject: it is never held whole.
func putCSV(endpoint, bucket, key string, lines int) error {
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
	pr, pw := io.Pipe()
	go func() {
		line := make([]byte, 33)
		line[32] = '\n'
		var err error
		for i := 0; i < lines && err == nil; i++ {
			// Fake mobile numbers 13800000000, 13800000001, ...
			sum := md5.Sum([]byte(strconv.Itoa(13800000000 + i)))
			hex.Encode(line, sum[:])
			_, err = pw.Write(line)
		}
		pw.CloseWithError(err)
	}()
	size := int64(lines) * 33 // 32 hex digits and a newline
	info, err := mc.PutObject(ctx, bucket, key, pr, size, minio.PutObjectOptions{ContentType: "text/csv"})
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	fmt.Printf("uploaded s3://%s/%s: %d lines, %d bytes, ETag %s\n", bucket, key, lines, info.Size, info.ETag)
	return nil
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
		if len(r.UploadID) > 12 { // WeChat Pay's upload IDs are long: keep the lines short
			path = strings.ReplaceAll(path, r.UploadID, r.UploadID[:8]+"…")
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
