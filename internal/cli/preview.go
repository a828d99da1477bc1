package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/internal/linecheck"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/uploadplan"
)

type previewOptions struct {
	*options
	dataType      string
	hashing       string
	skipHeaderRow bool
	maxLines      int32
	filename      string
	output        string
}

func newPreviewCommand(o *options) *cobra.Command {
	p := &previewOptions{options: o}
	cmd := &cobra.Command{
		Use:   "preview FILE --data-type Phone|OpenID",
		Short: "Check, hash and split a local file as the operator would, without a cluster",
		Long: `preview runs the operator's own line checks, hashing and splitting on a local
file, with no cluster and no call to WeChat Pay: the lines, the numbers of the
first invalid lines (never their content: it is personal data), and the uploads
the operator would make of the same bytes, with their filenames, line and byte
ranges, sizes and SHA-256 digests, as status.content and status.uploads[] will
show them. The flags are the spec.file fields of the same names.

The file is streamed, never loaded whole: memory stays flat whatever its size.`,
		Example: `  kubectl crowdpack preview vip.csv --data-type Phone
  kubectl crowdpack preview crm_export.csv --data-type Phone --hashing MD5 --skip-header-row
  kubectl crowdpack preview openids.csv --data-type OpenID --max-lines-per-upload 100000 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.run(cmd.Context(), args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.dataType, "data-type", "", "spec.file.dataType: Phone (MD5 lines, or raw numbers with --hashing MD5) or OpenID.")
	f.StringVar(&p.hashing, "hashing", string(upv1.HashingNone), "spec.file.hashing: None, or MD5 to hash raw mobile numbers (Phone only).")
	f.BoolVar(&p.skipHeaderRow, "skip-header-row", false, "spec.file.skipHeaderRow: leave line 1 out of every upload.")
	f.Int32Var(&p.maxLines, "max-lines-per-upload", uploadplan.RecommendedMaxLines, "spec.file.maxLinesPerUpload: most lines of one upload (at least 1000), or 0 to never split.")
	f.StringVar(&p.filename, "filename", "", "spec.file.filename (default: the file's base name).")
	f.StringVarP(&p.output, "output", "o", "", "Output format: yaml or json (default: text).")
	_ = cmd.MarkFlagRequired("data-type")
	return cmd
}

// Preview is what preview finds: status.content and status.uploads[] as
// the operator records them for the same file and spec.file.
type Preview struct {
	File    string              `json:"file"`
	Size    int64               `json:"size"`
	Digest  string              `json:"digest"`
	Content *upv1.ContentStatus `json:"content"`
	Uploads []upv1.UploadStatus `json:"uploads"`
}

// PreviewFile checks, hashes and cuts the file at path as the operator does
// for spec.file (filename empty: the file's base name).
func PreviewFile(ctx context.Context, path string, spec upv1.FileSpec) (*Preview, error) {
	check, err := linecheck.New(linecheck.DataType(spec.DataType))
	if err != nil {
		return nil, err
	}
	result, err := source.DigestChunks(ctx, fileSource(path), check, uploadplan.SplitOptions(&spec))
	if err != nil {
		return nil, err
	}
	name := spec.Filename
	if name == "" {
		name = filepath.Base(path)
	}
	p := &Preview{File: path, Size: result.Version.Size, Digest: uploadplan.DigestPrefix + result.Digest, Content: uploadplan.Content(result.Report)}
	for _, c := range result.Chunks {
		up := uploadplan.Upload(c, 0)
		up.Filename = name
		if len(result.Chunks) > 1 {
			up.Filename = uploadplan.ChunkName(strings.TrimSuffix(name, ".csv"), up.Index, len(result.Chunks))
		}
		p.Uploads = append(p.Uploads, up)
	}
	return p, nil
}

func (p *previewOptions) run(ctx context.Context, path string) error {
	spec, err := p.fileSpec()
	if err != nil {
		return err
	}
	if p.output != "" && p.output != "json" && p.output != "yaml" {
		return fmt.Errorf("unknown output format %q: use yaml or json", p.output)
	}
	pv, err := PreviewFile(ctx, path, spec)
	if err != nil {
		return err
	}
	switch p.output {
	case "json":
		data, err := json.MarshalIndent(pv, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.streams.Out, "%s\n", data)
		return err
	case "yaml":
		data, err := yaml.Marshal(pv)
		if err != nil {
			return err
		}
		_, err = p.streams.Out.Write(data)
		return err
	}
	printPreview(p.streams.Out, pv, spec)
	return nil
}

// fileSpec checks the flags as admission checks spec.file.
func (p *previewOptions) fileSpec() (upv1.FileSpec, error) {
	spec := upv1.FileSpec{
		Filename:          p.filename,
		DataType:          upv1.DataType(p.dataType),
		Hashing:           upv1.Hashing(p.hashing),
		SkipHeaderRow:     p.skipHeaderRow,
		MaxLinesPerUpload: &p.maxLines,
	}
	switch spec.DataType {
	case upv1.DataTypePhone, upv1.DataTypeOpenID:
	default:
		return spec, fmt.Errorf("--data-type %q: use Phone or OpenID", p.dataType)
	}
	switch spec.Hashing {
	case upv1.HashingNone:
	case upv1.HashingMD5:
		if spec.DataType != upv1.DataTypePhone {
			return spec, fmt.Errorf("--hashing MD5 turns raw mobile numbers into MD5 lines, so it needs --data-type Phone")
		}
	default:
		return spec, fmt.Errorf("--hashing %q: use None or MD5", p.hashing)
	}
	if p.maxLines != 0 && p.maxLines < 1000 {
		return spec, fmt.Errorf("--max-lines-per-upload must be at least 1000, or 0 to never split the file")
	}
	return spec, nil
}

func printPreview(w io.Writer, pv *Preview, spec upv1.FileSpec) {
	fmt.Fprintf(w, "File:     %s, %d bytes, %s\n", pv.File, pv.Size, pv.Digest)
	how := []string{string(spec.DataType), "hashing " + string(spec.Hashing)}
	if spec.SkipHeaderRow {
		how = append(how, "header row skipped")
	}
	if m := *spec.MaxLinesPerUpload; m == 0 {
		how = append(how, "never split")
	} else {
		how = append(how, fmt.Sprintf("at most %d lines per upload", m))
	}
	fmt.Fprintf(w, "As:       %s\n", strings.Join(how, ", "))
	fmt.Fprint(w, "Checked:  ")
	printContent(w, pv.Content)
	switch c := pv.Content; {
	case c.InvalidLines == 0:
	case spec.Hashing == upv1.HashingMD5:
		fmt.Fprintln(w, "          invalid lines are left out of the uploads; validation: Strict stalls on them")
	case c.InvalidLines == c.Lines && spec.DataType == upv1.DataTypePhone:
		fmt.Fprintln(w, "          no line is an MD5 line: if the file holds raw mobile numbers, use --hashing MD5 (spec.file.hashing)")
	default:
		fmt.Fprintln(w, "          invalid lines are sent as they are and WeChat Pay drops them; validation: Strict stalls on them")
	}
	fmt.Fprintf(w, "Uploads:  %d\n", len(pv.Uploads))
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	writeRow(tw, []string{"  #", "FILENAME", "LINES", "FILE BYTES", "LINES UPLOADED", "SIZE", "DIGEST"})
	for _, up := range pv.Uploads {
		writeRow(tw, []string{fmt.Sprintf("  %d", up.Index), up.Filename, fmt.Sprintf("%d-%d", up.FirstLine, up.LastLine),
			fmt.Sprintf("%d-%d", up.Start, up.End), fmt.Sprint(up.Lines), fmt.Sprint(up.Size), up.Digest})
	}
	_ = tw.Flush()
}

// fileSource reads a local file as the operator reads an object.
type fileSource string

func (f fileSource) Open(context.Context) (io.ReadCloser, source.Version, error) {
	file, err := os.Open(string(f))
	if err != nil {
		return nil, source.Version{}, err
	}
	info, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, source.Version{}, err
	}
	if !info.Mode().IsRegular() {
		file.Close()
		return nil, source.Version{}, fmt.Errorf("%s is not a regular file", f)
	}
	return file, source.Version{Size: info.Size(), LastModified: info.ModTime()}, nil
}

func (f fileSource) OpenRange(_ context.Context, _ source.Version, offset, length int64) (io.ReadCloser, error) {
	file, err := os.Open(string(f))
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(file, offset, length), file}, nil
}
