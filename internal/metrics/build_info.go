package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdpack/crowdpack/internal/version"
)

// BuildInfo is always 1; its labels say which build of the manager serves
// the metrics, so dashboards and alerts can tell versions apart.
var BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "crowdpack_build_info",
	Help: "The manager's build: version, commit and Go version (always 1).",
}, []string{"version", "commit", "goversion"})

func init() {
	BuildInfo.WithLabelValues(version.Version, version.Commit, version.GoVersion()).Set(1)
}
