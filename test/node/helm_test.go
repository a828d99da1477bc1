//go:build e2enode

package node

import (
	"testing"
	"time"
)

// uploadName is the raw export's UserPackageUpload of the install under
// test: WeChat Pay takes a filename once per brand, so each install's differs.
var uploadName string

func image(r release) string { return imageRepo + ":" + r.version }

// TestTheHelmChartOnARealNode installs the release's chart with its
// defaults and takes the manager's pod through what a platform team does
// with it. The steps share the install, so they run in order; a failing
// step fails the ones after it.
func TestTheHelmChartOnARealNode(t *testing.T) {
	uploadName = "helm-raw-export"
	restrictedNamespace(t, managerNamespace)
	t.Cleanup(func() {
		removeInstall(t, func() { helm(t, "uninstall", helmRelease, "--namespace", managerNamespace, "--wait") })
	})
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"TheManagerPodIsReadyUnderTheRestrictedPodSecurityLevel", helmInstallIsReady},
		{"TheImageRunIsTheReleasesImageTarball", theImageRunIsTheReleases},
		{"ARawExportIsHashedSplitAndUploadedThroughThePod", aRawExportIsUploadedThroughThePod},
		{"TheMetricsEndpointAnswersOnlyTheReaderRole", theMetricsEndpointAnswersOnlyTheReaderRole},
		{"TheLogsAreJSONLinesWithoutSecrets", theLogsAreJSONLinesWithoutSecrets},
		{"HelmUpgradeRollsThePodAndRepeatsNoCall", helmUpgradeRepeatsNoCall},
		{"DeletingTheLeaderMidPartsInitiatesOnce", deletingTheLeaderMidPartsInitiatesOnce},
		{"AManagerCutOffFromTheAPIServerGoesUnreadyNotCrashLooping", aManagerCutOffFromTheAPIServerGoesUnready},
		// Client-go's own messages (leader election, watches) came out while cut off.
		{"TheLogsStayJSONLinesAfterTheAPIServerWasUnreachable", theLogsAreJSONLinesWithoutSecrets},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Fatalf("%s failed: the steps after it need it", s.name)
		}
	}
}

func helmInstallIsReady(t *testing.T) {
	helm(t, "install", helmRelease, first.chart(), "--namespace", managerNamespace, "--values", helmValues(t, nil), "--wait=false")
	waitManagerReady(t, 1, image(first))
}

func aRawExportIsUploadedThroughThePod(t *testing.T) {
	setupTenant(t)
	createUpload(t, uploadName, 2500, 1000)
	u := waitUploadReady(t, uploadName, 3*time.Minute)
	checkEveryCallOnce(t, u, 3)
}
