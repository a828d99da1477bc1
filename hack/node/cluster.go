package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The node's network: a bridge of its own, its pods' subnet, the Services'
// range (the API server's Service is its first address).
const (
	nodeName       = "crowdpack-e2e-node"
	bridgeName     = "crowdpack0"
	podSubnet      = "10.244.0.0/24"
	serviceCIDR    = "10.96.0.0/24"
	apiServiceIP   = "10.96.0.1"
	cniNetworkName = "crowdpack-e2e"
	cniBinDir      = "/usr/lib/cni"
	// pauseImage is built by hack/node/pause (hack/tools.sh PAUSE_VERSION).
	pauseImage = "crowdpack.local/pause:3.9-crowdpack.1"
)

type cluster struct {
	o      options
	dir    string // everything the cluster writes that is its own
	logs   string
	hostIP string
	pki    *pki
	procs  map[string]*process
	order  []string // start order
	host   *hostState
	admin  string // cluster-admin kubeconfig
	// etcdPort and apiPort are free ports taken at start.
	etcdPort, apiPort int
	client            *kubernetes.Clientset
	ctrSock           string
}

func newCluster(o options) (*cluster, error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return nil, err
	}
	o.bin = bin
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, err
	}
	// The logs outlive the cluster's folder: they are kept after a failure.
	logs, err := os.MkdirTemp("", "crowdpack-e2e-logs-")
	if err != nil {
		return nil, err
	}
	c := &cluster{o: o, dir: dir, logs: logs, procs: map[string]*process{}}
	c.ctrSock = filepath.Join(dir, "containerd", "containerd.sock")
	return c, nil
}

func (c *cluster) logDir() string { return c.logs }

// envFor is what the command run against the cluster is told.
func (c *cluster) envFor() []string {
	return []string{
		"KUBECONFIG=" + c.admin,
		"CROWDPACK_E2E_NODE=1",
		// Pods reach the host, where the suite runs its sandbox and MinIO, here.
		"CROWDPACK_E2E_NODE_HOST_IP=" + c.hostIP,
		// For ctr --address ... -n k8s.io images import.
		"CROWDPACK_E2E_NODE_CONTAINERD=" + c.ctrSock,
		"CROWDPACK_E2E_NODE_NAME=" + nodeName,
	}
}

func (c *cluster) up(ctx context.Context) error {
	start := time.Now()
	if err := preflight(c.o.bin); err != nil {
		return err
	}
	ip, err := hostIP()
	if err != nil {
		return err
	}
	c.hostIP = ip
	if c.host, err = recordHost(); err != nil {
		return err
	}
	if err := c.host.save(); err != nil {
		return err
	}
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"certificates", c.writeCertificates},
		{"etcd", c.startEtcd},
		{"kube-apiserver", c.startAPIServer},
		{"controllers", c.startControllers},
		{"containerd", c.startContainerd},
		{"images", c.importImages},
		{"kubelet", c.startKubelet},
		{"kube-proxy", c.startKubeProxy},
		{"node Ready", c.waitNodeReady},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	log.Printf("node %s Ready in %s (host %s)", nodeName, time.Since(start).Round(time.Second), c.hostIP)
	return nil
}

func (c *cluster) start(name, bin string, args ...string) error {
	p, err := startProcess(c.logs, name, bin, args...)
	if err != nil {
		return err
	}
	c.procs[name] = p
	c.order = append(c.order, name)
	return nil
}

func (c *cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.dir}, parts...)...)
}

func (c *cluster) binary(name string) string { return filepath.Join(c.o.bin, name) }

func (c *cluster) writeCertificates(context.Context) error {
	p, err := newPKI(c.path("pki"))
	c.pki = p
	return err
}

func (c *cluster) startEtcd(ctx context.Context) error {
	var err error
	if c.etcdPort, err = freePort(); err != nil {
		return err
	}
	peer, err := freePort()
	if err != nil {
		return err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(c.etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	if err := c.start("etcd", c.binary("etcd"), "--data-dir", c.path("etcd"),
		"--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL, "--unsafe-no-fsync"); err != nil {
		return err
	}
	return c.waitHTTP(ctx, "etcd", url+"/health", nil, time.Minute)
}

func (c *cluster) startAPIServer(ctx context.Context) error {
	var err error
	if c.apiPort, err = freePort(); err != nil {
		return err
	}
	ips := []net.IP{net.ParseIP(c.hostIP), net.ParseIP(apiServiceIP), net.ParseIP("127.0.0.1")}
	names := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"}
	servingCert, servingKey, err := c.pki.issue("apiserver", "kube-apiserver", "", ips, names)
	if err != nil {
		return err
	}
	kubeletCert, kubeletKey, err := c.pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters", nil, nil)
	if err != nil {
		return err
	}
	saKey, err := c.pki.serviceAccountKey()
	if err != nil {
		return err
	}
	if err := c.start("kube-apiserver", c.binary("kube-apiserver"),
		"--etcd-servers", "http://127.0.0.1:"+strconv.Itoa(c.etcdPort),
		"--bind-address", "0.0.0.0", "--advertise-address", c.hostIP, "--secure-port", strconv.Itoa(c.apiPort),
		"--tls-cert-file", servingCert, "--tls-private-key-file", servingKey,
		"--client-ca-file", c.pki.CAFile,
		"--kubelet-client-certificate", kubeletCert, "--kubelet-client-key", kubeletKey,
		// The node's name resolves nowhere: reach the kubelet at its address.
		"--kubelet-preferred-address-types", "InternalIP",
		"--service-account-key-file", saKey, "--service-account-signing-key-file", saKey,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", serviceCIDR, "--authorization-mode", "RBAC",
		"--allow-privileged=true"); err != nil {
		return err
	}
	if c.admin, err = c.writeKubeconfig("admin", "kubernetes-admin", "system:masters"); err != nil {
		return err
	}
	if err := c.waitHTTP(ctx, "kube-apiserver", c.apiURL()+"/readyz", c.adminTLS, 2*time.Minute); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.admin)
	if err != nil {
		return err
	}
	c.client, err = kubernetes.NewForConfig(cfg)
	return err
}

func (c *cluster) apiURL() string { return "https://" + c.hostIP + ":" + strconv.Itoa(c.apiPort) }

// adminTLS is the admin's client certificate, for probing /readyz.
func (c *cluster) adminTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.path("pki", "admin.crt"), c.path("pki", "admin.key"))
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true}, nil //nolint:gosec // our own fresh API server
}

// writeKubeconfig writes NAME.kubeconfig for a client certificate of user in group.
func (c *cluster) writeKubeconfig(name, user, group string) (string, error) {
	cert, key, err := c.pki.issue(name, user, group, nil, nil)
	if err != nil {
		return "", err
	}
	file := c.path(name + ".kubeconfig")
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e-node
  cluster: {server: %q, certificate-authority: %q}
users:
- name: %s
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: e2e-node
  context: {cluster: e2e-node, user: %s}
current-context: e2e-node
`, c.apiURL(), c.pki.CAFile, name, cert, key, name)
	return file, os.WriteFile(file, []byte(content), 0o600)
}

// startControllers starts the controller manager (Deployments, ReplicaSets,
// ServiceAccount tokens, the kube-root-ca.crt ConfigMaps, garbage collection)
// and the scheduler.
func (c *cluster) startControllers(context.Context) error {
	kubeconfig, err := c.writeKubeconfig("controller-manager", "system:kube-controller-manager", "system:masters")
	if err != nil {
		return err
	}
	if err := c.start("kube-controller-manager", c.binary("kube-controller-manager"),
		"--kubeconfig", kubeconfig, "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--service-account-private-key-file", c.path("pki", "sa.key"), "--root-ca-file", c.pki.CAFile,
		"--use-service-account-credentials=false", "--leader-elect=false",
		"--controllers", "*,-nodeipam,-cloud-node-lifecycle,-service,-route"); err != nil {
		return err
	}
	schedKubeconfig, err := c.writeKubeconfig("scheduler", "system:kube-scheduler", "system:masters")
	if err != nil {
		return err
	}
	return c.start("kube-scheduler", c.binary("kube-scheduler"),
		"--kubeconfig", schedKubeconfig, "--authentication-kubeconfig", schedKubeconfig, "--authorization-kubeconfig", schedKubeconfig,
		"--bind-address", "127.0.0.1", "--secure-port", "0", "--leader-elect=false")
}

// startContainerd runs Debian's containerd with state of its own: its
// root, state and socket in the cluster's folder, CRI's sandbox image the
// local pause image, cgroupfs (no systemd here), and restrict_oom_score_adj
// (runc cannot set a negative oom_score_adj on this kind of machine: every
// sandbox fails with "can't get final child's PID from pipe: EOF").
func (c *cluster) startContainerd(ctx context.Context) error {
	netDir := c.path("cni", "net.d")
	if err := os.MkdirAll(netDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(netDir, "10-crowdpack-e2e.conflist"), []byte(c.cniConfig()), 0o644); err != nil {
		return err
	}
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
`, c.path("containerd", "root"), c.path("containerd", "state"), c.ctrSock, c.path("containerd", "opt"), pauseImage, cniBinDir, netDir)
	file := c.path("containerd", "config.toml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		return err
	}
	if err := c.start("containerd", "containerd", "--config", file); err != nil {
		return err
	}
	return c.waitFor(ctx, "containerd's socket", time.Minute, func() error {
		return c.ctr("version")
	})
}

// cniConfig is a bridge with host-local addresses (kept in the cluster's
// folder) and masquerade, plus loopback.
func (c *cluster) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "loopback"}
  ]
}`, cniNetworkName, bridgeName, c.path("cni", "ipam"), podSubnet)
}

func (c *cluster) ctr(args ...string) error {
	out, err := exec.Command("ctr", append([]string{"--address", c.ctrSock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *cluster) importImages(context.Context) error {
	for _, tar := range append([]string{c.binary("pause-image.tar")}, c.o.images...) {
		start := time.Now()
		if err := c.ctr("images", "import", "--no-unpack", tar); err != nil {
			return err
		}
		log.Printf("imported %s in %s", tar, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (c *cluster) startKubelet(ctx context.Context) error {
	// system:masters: the kubelet's webhook authorizer reviews the API
	// server's calls (logs, exec) without a Node authorizer setup.
	kubeconfig, err := c.writeKubeconfig("kubelet", "system:node:"+nodeName, "system:masters")
	if err != nil {
		return err
	}
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
address: %s
port: %d
healthzPort: 0
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
failSwapOn: false
# The suite's images were imported, not pulled: image GC must never take them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
resolvConf: /etc/resolv.conf
serializeImagePulls: false
`, c.ctrSock, c.hostIP, kubeletPort, c.pki.CAFile)
	file := c.path("kubelet-config.yaml")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		return err
	}
	return c.start("kubelet", c.binary("kubelet"), "--config", file, "--kubeconfig", kubeconfig,
		"--root-dir", c.path("kubelet"), "--cert-dir", c.path("kubelet-pki"), "--hostname-override", nodeName, "--node-ip", c.hostIP,
		"--pod-infra-container-image", pauseImage, "--v", "2")
}

// kubeletPort is not the default 10250: another cluster on the machine must not collide.
const kubeletPort = 10350

func (c *cluster) startKubeProxy(context.Context) error {
	kubeconfig, err := c.writeKubeconfig("kube-proxy", "system:kube-proxy", "system:masters")
	if err != nil {
		return err
	}
	metrics, err := freePort()
	if err != nil {
		return err
	}
	healthz, err := freePort()
	if err != nil {
		return err
	}
	// conntrack 0s: leave the host's conntrack sysctls as they are.
	return c.start("kube-proxy", c.binary("kube-proxy"), "--kubeconfig", kubeconfig,
		"--hostname-override", nodeName, "--cluster-cidr", podSubnet, "--proxy-mode", "iptables",
		"--conntrack-max-per-core", "0", "--conntrack-tcp-timeout-established", "0", "--conntrack-tcp-timeout-close-wait", "0",
		"--metrics-bind-address", "127.0.0.1:"+strconv.Itoa(metrics), "--healthz-bind-address", "127.0.0.1:"+strconv.Itoa(healthz))
}

func (c *cluster) waitNodeReady(ctx context.Context) error {
	return c.waitFor(ctx, "node "+nodeName+" Ready", 3*time.Minute, func() error {
		n, err := c.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("Ready=%s: %s", cond.Status, cond.Message)
			}
		}
		return fmt.Errorf("no Ready condition yet")
	})
}

// waitFor polls check every half second until it passes, a process of the
// cluster exits, or timeout.
func (c *cluster) waitFor(ctx context.Context, what string, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		for _, name := range c.order {
			if exit := c.procs[name].exited(); exit != nil && !c.procs[name].stopped {
				return fmt.Errorf("waiting for %s: %w (see %s)", what, exit, filepath.Join(c.logs, name+".log"))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not within %s: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *cluster) waitHTTP(ctx context.Context, what, url string, tlsConfig func() (*tls.Config, error), timeout time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second}
	if tlsConfig != nil {
		cfg, err := tlsConfig()
		if err != nil {
			return err
		}
		client.Transport = &http.Transport{TLSClientConfig: cfg}
	}
	return c.waitFor(ctx, what, timeout, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
}

// dumpLogs prints the end of every daemon's log, for a start that failed.
func (c *cluster) dumpLogs() {
	for _, name := range c.order {
		data, _ := os.ReadFile(filepath.Join(c.logs, name+".log"))
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		log.Printf("--- last lines of %s.log:\n%s", name, strings.Join(lines, "\n"))
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// hostIP is the address of the interface of the default route: pods reach
// the host (and the API server) there.
func hostIP() (string, error) {
	conn, err := net.Dial("udp", "8.8.8.8:53") // a UDP dial sends nothing
	if err != nil {
		return "", fmt.Errorf("find the host's address (a default route is needed): %w", err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// runAPod runs a pod of the pause image and waits for it to run: the
// sandbox, its network namespace, CNI address and rules, cgroups and logs
// are then all there for a teardown to remove.
func (c *cluster) runAPod(ctx context.Context) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pause"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "pause", Image: pauseImage, ImagePullPolicy: corev1.PullNever,
		}}},
	}
	if _, err := c.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create a pod: %w", err)
	}
	return c.waitFor(ctx, "a pod Running", 2*time.Minute, func() error {
		p, err := c.client.CoreV1().Pods("default").Get(ctx, "pause", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("pod is %s", p.Status.Phase)
		}
		return nil
	})
}
