package uploads

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/semaphore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	upv1 "github.com/crowdpack/crowdpack/api/v1alpha1"
	"github.com/crowdpack/crowdpack/controllers/once"
	"github.com/crowdpack/crowdpack/controllers/packagelock"
	"github.com/crowdpack/crowdpack/controllers/readslots"
	"github.com/crowdpack/crowdpack/controllers/statuswriter"
	"github.com/crowdpack/crowdpack/internal/bound"
	"github.com/crowdpack/crowdpack/internal/delta"
	"github.com/crowdpack/crowdpack/internal/metrics"
	"github.com/crowdpack/crowdpack/internal/source"
	"github.com/crowdpack/crowdpack/internal/wechatpay"
)

// scope is one reconcile of one object: the object, the clock, the status
// writer, and the brand API and storage clients, each made at most once
// and only when a step needs it. Reconcile builds it; the steps take it
// and never reach back into the reconciler.
type scope struct {
	obj    *upv1.UserPackageUpload
	status *statuswriter.Writer
	clock  func() time.Time
	events events.EventRecorder
	parts  *partSettings
	slots  *readslots.Slots
	// answers holds answers of calls until a write carries them.
	answers *once.Answers
	// packages makes the expands of one crowd package take turns.
	packages *packagelock.Locks

	dialWeChatPay func(context.Context) (wechatpay.API, string, error)
	// knownBrand is the brand of the credentials, if known without reading them.
	knownBrand func(context.Context) (string, bool)
	dialSource func(context.Context) (source.Source, error)
	dialBase   func(context.Context) (source.Source, error)
	deltaPool  *delta.Pool
	wechat     wechatpay.API
	brandID    string // the brand of wechat
	source     source.Source
	base       source.Source

	// chunk is the position in status.uploads of the upload the chunk
	// steps work on (see upload).
	chunk int
	// ledger owns what this reconcile wrote of initiate's pending mark.
	ledger *once.Ledger
	// calledWeChatPay is true once a call changed something at WeChat Pay.
	calledWeChatPay bool
	// slotMemory and slotRelease are the namespace's read slot, once taken
	// (readSlot), and its share of the part memory.
	slotMemory  *semaphore.Weighted
	slotRelease func()
}

// partSettings are the reconciler-wide settings and state of part uploads.
type partSettings struct {
	concurrency int
	backoff     time.Duration       // the first wait before a part is tried again
	memory      *semaphore.Weighted // bytes of parts held at once, by the whole manager
	journal     once.Journal        // acknowledgements not yet in status
}

// newScope starts the reconcile of u.
func (r *Reconciler) newScope(u *upv1.UserPackageUpload) *scope {
	s := &scope{
		obj:           u,
		status:        statuswriter.New(r.Client, r.APIReader, u),
		clock:         r.Now,
		events:        r.Recorder,
		parts:         &r.parts,
		slots:         r.readSlots,
		ledger:        once.NewLedger(&r.parkedMarks),
		answers:       &r.answers,
		packages:      &r.packages,
		dialWeChatPay: func(ctx context.Context) (wechatpay.API, string, error) { return r.weChatPay(ctx, u) },
		knownBrand:    func(ctx context.Context) (string, bool) { return r.knownBrand(ctx, u) },
		dialSource:    func(ctx context.Context) (source.Source, error) { return r.openSource(ctx, u) },
		dialBase:      func(ctx context.Context) (source.Source, error) { return r.openBase(ctx, u) },
		deltaPool:     r.DeltaPool,
	}
	key := s.key()
	s.status.Saved = func() { r.answers.Forget(key) }
	return s
}

// key names the object.
func (s *scope) key() client.ObjectKey { return client.ObjectKeyFromObject(s.obj) }

// weChatPay returns the brand API client, made on first use with
// credentials read live.
func (s *scope) weChatPay(ctx context.Context) (wechatpay.API, error) {
	if s.wechat == nil {
		c, brandID, err := s.dialWeChatPay(ctx)
		if err != nil {
			return nil, err
		}
		if s.brandID != "" && s.brandID != brandID {
			// The uploads' keys were checked against the brand before: check again.
			return nil, fmt.Errorf("the credentials changed from brand %s to %s during the reconcile; reconciling again", s.brandID, brandID)
		}
		s.wechat, s.brandID = c, brandID
	}
	return s.wechat, nil
}

// brand returns the brand the object's uploads go to, without reading the
// credentials when the version of their Secret is known (brandMemo).
func (s *scope) brand(ctx context.Context) error {
	if s.brandID != "" {
		return nil
	}
	if id, ok := s.knownBrand(ctx); ok {
		s.brandID = id
		return nil
	}
	_, err := s.weChatPay(ctx)
	return err
}

// storage returns the object storage of the spec, opened on first use.
func (s *scope) storage(ctx context.Context) (source.Source, error) {
	if s.source == nil {
		src, err := s.dialSource(ctx)
		if err != nil {
			return nil, err
		}
		s.source = metrics.InstrumentNamespaceSource(s.obj.Namespace, src)
	}
	return s.source, nil
}

// baseStorage returns the object storage of spec.file.excludeMembersOf,
// opened on first use.
func (s *scope) baseStorage(ctx context.Context) (source.Source, error) {
	if s.base == nil {
		src, err := s.dialBase(ctx)
		if err != nil {
			return nil, err
		}
		s.base = metrics.InstrumentNamespaceSource(s.obj.Namespace, src)
	}
	return s.base, nil
}

// now is the clock, as status stores times.
func (s *scope) now() *metav1.Time {
	t := metav1.NewTime(s.clock())
	return &t
}

// event records an event about the object, its note cut to what events allow.
func (s *scope) event(eventType, reason, message string) {
	if s.events != nil {
		s.events.Eventf(s.obj, nil, eventType, reason, "Reconcile", "%s", bound.Text(message, bound.EventNote))
	}
}
