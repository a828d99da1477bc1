package uploads

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sync/semaphore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/classify"
	"github.com/crowdpack/crowdpack/controllers/uploads/parts"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// reconcileParts sends every part WeChat Pay has not acknowledged yet, at
// most PartConcurrency at a time. Each part is read with a ranged GET
// pinned to the digested version, digested and sent; acknowledgements are
// written to status as they come, so that a restart goes on where it
// stopped and never sends an acknowledged part again. Sets PartsUploaded.
func reconcileParts(ctx context.Context, s *scope) error {
	if !wantsParts(s.obj, upv1.ConditionPartsUploaded) {
		return nil
	}
	u, up := s.obj, s.upload()
	if err := checkPlan(up, up.Size); err != nil {
		return failCondition(u, upv1.ConditionPartsUploaded, err)
	}
	if !parts.Done(up) {
		acked, err := parts.DecodeSet(up.PartsAcked, up.PartCount)
		if err != nil {
			return failCondition(u, upv1.ConditionPartsUploaded, classify.Stall(upv1.ReasonInvalidSpec, "%v", err))
		}
		if acked.Count() < up.PartCount {
			if err := s.uploadParts(ctx, acked); err != nil {
				return failCondition(u, upv1.ConditionPartsUploaded, err)
			}
		}
	}
	setCondition(u, upv1.ConditionPartsUploaded, metav1.ConditionTrue, upv1.ReasonPartsUploaded, partsMessage(s.upload()))
	return nil
}

// checkPlan refuses a part plan that cannot describe the file, before
// anything is allocated from it. Initiate's answer was checked when it
// came, so a bad plan here was written into status by someone else.
func checkPlan(up *upv1.UploadStatus, size int64) error {
	if wechatpay.CheckPlan(up.PartSize, up.PartCount, size) != nil {
		return classify.Stall(upv1.ReasonInvalidPlan,
			"status.upload holds a part plan of %d parts of %d bytes, which cannot describe the file's %d bytes (at most %d parts of at most %d bytes); "+
				"it was not acted upon. Change the spec (e.g. spec.file.filename) to start a new upload",
			up.PartCount, up.PartSize, size, wechatpay.MaxPartCount, wechatpay.MaxPartSize)
	}
	return nil
}

// uploadParts sends the parts not in acked, with the namespace's read slot.
func (s *scope) uploadParts(ctx context.Context, acked *parts.Set) error {
	u := s.obj
	src, err := s.storage(ctx)
	if err != nil {
		return err
	}
	wc, err := s.weChatPay(ctx)
	if err != nil {
		return err
	}
	setCondition(u, upv1.ConditionPartsUploaded, metav1.ConditionFalse, upv1.ReasonProgressing,
		fmt.Sprintf("uploading %d parts", s.upload().PartCount))
	// A stale set of acknowledged parts would resend parts: the object must
	// be the latest version, as a write of this reconcile (initiate's
	// answer, an earlier upload's mark) leaves it.
	if err := s.status.EnsureCurrent(ctx, u); err != nil {
		return err
	}
	nsMemory, err := s.readSlot()
	if err != nil {
		return err
	}
	if err := s.newPartUploader(wc, src, nsMemory, acked).Run(ctx, s.parts.concurrency); err != nil {
		return err
	}
	// The last acknowledgements ride on the next write (merge's claim).
	s.status.Keep()
	s.calledWeChatPay = true
	return nil
}

// newPartUploader is the sender of the chunk's upload's parts: it reads
// them from src and holds their bytes within the manager's part memory and
// nsMemory, the namespace's share of it.
func (s *scope) newPartUploader(wc wechatpay.API, src source.Source, nsMemory *semaphore.Weighted, acked *parts.Set) *parts.Uploader {
	u := s.obj
	key, up := client.ObjectKeyFromObject(u), *s.upload()
	remember := func(part int64) { s.parts.journal.Add(key, up.ID, part) }
	p := &parts.Uploader{
		WeChat:   wc,
		Source:   src,
		Version:  pinnedVersion(u.Status.Source),
		Upload:   up,
		Memory:   s.parts.memory,
		NsMemory: nsMemory,
		Backoff:  s.parts.backoff,
		Progress: parts.NewProgress(u, s.chunk, s.status, acked, remember, setSummary),
	}
	switch opts := splitOptions(u); {
	case excludes(u):
		p.Stream = func(ctx context.Context) (*source.ChunkReader, error) { return s.openDeltaChunk(ctx, src, &up) }
	case opts.HashMD5:
		p.Stream = func(ctx context.Context) (*source.ChunkReader, error) {
			return source.OpenChunk(ctx, src, p.Version, chunkOf(&up), opts)
		}
	}
	p.Progress.Recall(s.parts.journal.Parts(key, up.ID))
	return p
}

// pinnedVersion is the version of the file that was digested, which every
// part must be read from.
func pinnedVersion(s *upv1.SourceStatus) source.Version {
	v := source.Version{Size: s.Size, ETag: s.ETag, VersionID: s.VersionID}
	if s.LastModified != nil {
		v.LastModified = s.LastModified.Time
	}
	return v
}

// chunkOf is the chunk an upload sends, as the source reads it again.
func chunkOf(up *upv1.UploadStatus) source.Chunk {
	return source.Chunk{
		Index: int(up.Index), FirstLine: up.FirstLine, LastLine: up.LastLine,
		Start: up.Start, End: up.End, Lines: up.Lines, Size: up.Size,
		Digest: strings.TrimPrefix(up.Digest, digestPrefix),
	}
}
