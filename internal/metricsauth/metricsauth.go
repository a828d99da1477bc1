// Package metricsauth serves the manager's metrics only to callers whose
// bearer token the API server authenticates (a TokenReview) and authorizes
// to get the path (a SubjectAccessReview of a non-resource URL), with the
// answers cached as controller-runtime's
// filters.WithAuthenticationAndAuthorization caches them (tokens 1 minute,
// allowed 5 minutes, denied 30 seconds). It is that filter without
// k8s.io/apiserver, which with what it pulls in (CEL, gRPC) was 32 MB of
// the manager's 82 MB binary, most of it resident as code.
package metricsauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apimachinery/pkg/util/wait"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// How long answers are kept, and how many (anyone who reaches the port
// can send tokens: the caches are bounded).
const (
	tokenTTL      = time.Minute
	allowedTTL    = 5 * time.Minute
	deniedTTL     = 30 * time.Second
	cacheSize     = 4096
	reviewTimeout = 10 * time.Second
)

// reviewBackoff retries a review the API server could not answer, as the
// apiserver's delegating authenticator and authorizer do.
var reviewBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}

// Reviews asks the API server who a token is and what a user may do.
type Reviews interface {
	// Authenticate returns the token's user, or ok false for a token the
	// API server does not accept.
	Authenticate(ctx context.Context, token string) (user authenticationv1.UserInfo, ok bool, err error)
	// Authorize says whether user may do verb on the non-resource path.
	Authorize(ctx context.Context, user authenticationv1.UserInfo, verb, path string) (ok bool, reason string, err error)
}

// WithAuthenticationAndAuthorization is a metrics server FilterProvider
// that asks the API server of cfg, through httpClient.
func WithAuthenticationAndAuthorization(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	tokens, err := authenticationclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("token review client: %w", err)
	}
	access, err := authorizationclient.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("access review client: %w", err)
	}
	return Filter(Cached(apiReviews{tokens: tokens.TokenReviews(), access: access.SubjectAccessReviews()})), nil
}

// Filter serves a request only when its bearer token's user may do the
// request's method (lower case: get) on its path: 401 without a token the
// API server accepts, 403 when the user may not, 500 when it could not be
// asked.
func Filter(reviews Reviews) metricsserver.Filter {
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			token, found := bearerToken(req)
			var user authenticationv1.UserInfo
			ok := false
			if found {
				var err error
				if user, ok, err = reviews.Authenticate(req.Context(), token); err != nil {
					log.Error(err, "Authentication failed")
					http.Error(w, "Authentication failed", http.StatusInternalServerError)
					return
				}
			}
			if !ok {
				log.V(4).Info("Authentication failed")
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			allowed, reason, err := reviews.Authorize(req.Context(), user, strings.ToLower(req.Method), req.URL.Path)
			if err != nil {
				msg := fmt.Sprintf("Authorization for user %s failed", user.Username)
				log.Error(err, msg)
				http.Error(w, msg, http.StatusInternalServerError)
				return
			}
			if !allowed {
				msg := fmt.Sprintf("Authorization denied for user %s", user.Username)
				log.V(4).Info(msg, "reason", reason)
				http.Error(w, msg, http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, req)
		}), nil
	}
}

// bearerToken is the token of an "Authorization: Bearer <token>" header.
func bearerToken(req *http.Request) (string, bool) {
	scheme, token, found := strings.Cut(strings.TrimSpace(req.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	return token, found && strings.EqualFold(scheme, "bearer") && token != ""
}

// apiReviews asks the API server, retrying what it could not answer.
type apiReviews struct {
	tokens authenticationclient.TokenReviewInterface
	access authorizationclient.SubjectAccessReviewInterface
}

func (a apiReviews) Authenticate(ctx context.Context, token string) (authenticationv1.UserInfo, bool, error) {
	ask := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	var answer *authenticationv1.TokenReview
	err := retry.OnError(reviewBackoff, unanswered, func() error {
		ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
		defer cancel()
		var err error
		answer, err = a.tokens.Create(ctx, ask, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return authenticationv1.UserInfo{}, false, fmt.Errorf("token review: %w", err)
	}
	return answer.Status.User, answer.Status.Authenticated, nil
}

func (a apiReviews) Authorize(ctx context.Context, user authenticationv1.UserInfo, verb, path string) (bool, string, error) {
	ask := &authorizationv1.SubjectAccessReview{Spec: accessSpec(user, verb, path)}
	var answer *authorizationv1.SubjectAccessReview
	err := retry.OnError(reviewBackoff, unanswered, func() error {
		ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
		defer cancel()
		var err error
		answer, err = a.access.Create(ctx, ask, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return false, "", fmt.Errorf("subject access review: %w", err)
	}
	return answer.Status.Allowed, answer.Status.Reason, nil
}

// accessSpec asks whether user may do verb on path.
func accessSpec(user authenticationv1.UserInfo, verb, path string) authorizationv1.SubjectAccessReviewSpec {
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	return authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
	}
}

// unanswered is true for an error that says the API server could not
// answer (no connection, a timeout, 429, 5xx), not that it refused.
func unanswered(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true
	}
	code := status.Status().Code
	return code == http.StatusTooManyRequests || code >= http.StatusInternalServerError || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err)
}

// cachedReviews remembers the answers of reviews for their TTLs; errors
// are not remembered.
type cachedReviews struct {
	reviews Reviews
	tokens  *cache.LRUExpireCache // SHA-256 of the token → tokenAnswer
	access  *cache.LRUExpireCache // the access review's spec as JSON → accessAnswer
}

type tokenAnswer struct {
	user authenticationv1.UserInfo
	ok   bool
}

type accessAnswer struct {
	ok     bool
	reason string
}

// Cached remembers the answers of reviews, keeping no token itself.
func Cached(reviews Reviews) Reviews {
	return cachedWithClock(reviews, realClock{})
}

func cachedWithClock(reviews Reviews, clock cache.Clock) *cachedReviews {
	return &cachedReviews{reviews: reviews,
		tokens: cache.NewLRUExpireCacheWithClock(cacheSize, clock), access: cache.NewLRUExpireCacheWithClock(cacheSize, clock)}
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (c *cachedReviews) Authenticate(ctx context.Context, token string) (authenticationv1.UserInfo, bool, error) {
	key := sha256.Sum256([]byte(token))
	if a, found := c.tokens.Get(key); found {
		return a.(tokenAnswer).user, a.(tokenAnswer).ok, nil
	}
	user, ok, err := c.reviews.Authenticate(ctx, token)
	if err == nil {
		c.tokens.Add(key, tokenAnswer{user: user, ok: ok}, tokenTTL)
	}
	return user, ok, err
}

func (c *cachedReviews) Authorize(ctx context.Context, user authenticationv1.UserInfo, verb, path string) (bool, string, error) {
	spec, err := json.Marshal(accessSpec(user, verb, path))
	if err != nil {
		return false, "", fmt.Errorf("access review key: %w", err)
	}
	key := string(spec)
	if a, found := c.access.Get(key); found {
		return a.(accessAnswer).ok, a.(accessAnswer).reason, nil
	}
	ok, reason, err := c.reviews.Authorize(ctx, user, verb, path)
	if err != nil {
		return false, "", err
	}
	ttl := deniedTTL
	if ok {
		ttl = allowedTTL
	}
	c.access.Add(key, accessAnswer{ok: ok, reason: reason}, ttl)
	return ok, reason, nil
}
