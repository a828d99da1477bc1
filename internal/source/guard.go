package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// Defaults of the platform's source policy, shared by the manager's flags
// and by reconcilers built without them (tests).
const (
	// DefaultDeniedCIDRs are loopback (the manager's own metrics and probe
	// ports), link-local (the cloud metadata service 169.254.169.254),
	// Aliyun's metadata address and "this host".
	DefaultDeniedCIDRs = "127.0.0.0/8,::1/128,169.254.0.0/16,fe80::/10,100.100.100.200/32,0.0.0.0/32"
	// DefaultIdleTimeout fails a read that received no byte for that long.
	DefaultIdleTimeout = time.Minute
	// DefaultMinRate (bytes per second, averaged over DefaultRateWindow)
	// fails a read that drips: it would hold a worker and part memory.
	DefaultMinRate = 64 << 10
	// DefaultRateWindow is the span over which the rate is averaged.
	DefaultRateWindow = 30 * time.Second
	// DefaultMaxFileSize refuses larger objects before any byte is read.
	DefaultMaxFileSize = 10 << 30
)

// Guard is the platform's policy for the connections and reads a tenant's
// object makes the manager do: which addresses it may connect to (checked on
// the resolved address at dial time, so DNS cannot bypass it), whether plain
// HTTP is allowed, and how slow or big a read may be. A nil *Guard checks
// nothing; the manager always sets one.
type Guard struct {
	// Denied lists networks the manager never connects to for a source.
	Denied []netip.Prefix
	// Allowed lists exceptions to Denied, e.g. a MinIO on the node's loopback.
	Allowed []netip.Prefix
	// AllowInsecure allows plain-HTTP sources (s3 insecure, http:// URLs).
	AllowInsecure bool
	// IdleTimeout fails a read that received no byte for that long; 0: none.
	IdleTimeout time.Duration
	// MinRate fails a read slower than MinRate bytes per second averaged
	// over RateWindow; 0: none.
	MinRate    int64
	RateWindow time.Duration
	// MaxFileSize refuses an object larger than that, from its announced
	// size; 0: no limit.
	MaxFileSize int64
	// LookupIP resolves host names; nil uses the system resolver. Tests map
	// names to addresses with it, without touching /etc/hosts.
	LookupIP func(ctx context.Context, host string) ([]netip.Addr, error)
}

// DefaultGuard is the policy of a manager started without flags.
func DefaultGuard() *Guard {
	denied, _ := ParseCIDRs(DefaultDeniedCIDRs)
	return &Guard{
		Denied:      denied,
		IdleTimeout: DefaultIdleTimeout,
		MinRate:     DefaultMinRate,
		RateWindow:  DefaultRateWindow,
		MaxFileSize: DefaultMaxFileSize,
	}
}

// ParseCIDRs reads a comma-separated list of networks; a bare address is
// a network of that one address.
func ParseCIDRs(list string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			addr, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an address", s)
			}
			prefixes = append(prefixes, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR: %w", s, err)
		}
		prefixes = append(prefixes, p.Masked())
	}
	return prefixes, nil
}

// Permits reports whether the manager may connect to addr. An allowed
// network wins over a denied one; the unspecified addresses (0.0.0.0, ::)
// reach the host itself and are denied unless allowed.
func (g *Guard) Permits(addr netip.Addr) bool {
	if g == nil {
		return true
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range g.Allowed {
		if p.Contains(addr) {
			return true
		}
	}
	if addr.IsUnspecified() {
		return false
	}
	for _, p := range g.Denied {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// errDialDenied is what the dialer's Control hook returns; it never
// reaches a message (addressDenied replaces the whole error).
var errDialDenied = fmt.Errorf("%w by --source-denied-cidrs", ErrAddressDenied)

// control runs after the name is resolved and before the connection is
// made, on every dial (every redirect hop, every retry).
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return errDialDenied
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !g.Permits(addr) {
		return errDialDenied
	}
	return nil
}

// dialContext connects through a dialer whose Control hook checks the
// resolved address; with LookupIP it resolves the name itself and dials
// the addresses in turn.
func (g *Guard) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	host, port, err := net.SplitHostPort(address)
	if g.LookupIP == nil || err != nil {
		return dialer.DialContext(ctx, network, address)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return dialer.DialContext(ctx, network, address)
	}
	addrs, err := g.LookupIP(ctx, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var errs []error
	for _, a := range addrs {
		conn, err := dialer.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(append(errs, &net.DNSError{Err: "no address", Name: host, IsNotFound: len(addrs) == 0})...)
}

// addressDenied is the whole message of a refused connection: it names the
// host as the spec wrote it and the flag to change, never the address it
// resolved to nor anything the host could have answered.
func addressDenied(op, name, host string, redirected bool) error {
	what := fmt.Sprintf("the manager does not connect to %q, whose address is in a network it refuses", host)
	if redirected {
		what = fmt.Sprintf("%q redirected to a host whose address is in a network the manager refuses", host)
	}
	return fmt.Errorf("%s %s: %w: %s (--source-denied-cidrs); point the source at another host, or ask the platform team to list its network in --source-allowed-cidrs",
		op, name, ErrAddressDenied, what)
}

// insecureDenied says that plain HTTP needs the platform's consent.
func insecureDenied(name, what string) error {
	return fmt.Errorf("%s: %w: %s, and the manager runs without --allow-insecure-sources; use https, or ask the platform team to allow plain HTTP",
		name, ErrInsecureDenied, what)
}

// checkSize refuses an object larger than the platform allows, from the
// size it announces, before any of its bytes is read.
func (g *Guard) checkSize(name string, size int64) error {
	if g == nil || g.MaxFileSize <= 0 || size <= g.MaxFileSize {
		return nil
	}
	return fmt.Errorf("get %s: %w: the object has %d bytes, more than the %d bytes the manager accepts (--max-file-size)",
		name, ErrTooLarge, size, g.MaxFileSize)
}
