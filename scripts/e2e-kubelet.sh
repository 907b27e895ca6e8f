#!/usr/bin/env bash
# e2e-kubelet.sh runs the project's rendered manifests on a real kubelet,
# with no cluster and no registry, and prints a table of the scenarios:
#
#   1a/1b the consumer starts only once the first token is on disk, with the
#         control plane up, and unreachable at first;
#   2     every token tokend wrote reaches the consumers, never a partial file;
#   3     a SIGKILLed tokend is restarted by the kubelet and writes a new token
#         while the consumers run on; with the control plane down the pod
#         turns not ready and the consumers keep the last token;
#   4     the sidecars end after the main container and the pod Succeeds;
#   5     behind the credential proxy, the agent (no token volume) reaches an
#         https API server;
#   6     the OpenShift Component under an assigned user;
#   7     after a 403 the consumers see no token and the pod turns not ready
#         (skipped with a tokend that does not withdraw a refused token).
#
# As root on Debian 12 (a machine of this project's kind):
#
#   scripts/e2e-kubelet.sh
#
# What it does, each step once:
#  1. installs containerd, runc and busybox-static with apt-get when missing;
#  2. builds a kubelet (hack/build-kubelet.sh; cached, 35-45 min the first
#     time, seconds after);
#  3. builds the images without a registry or a Docker daemon
#     (hack/ociimage): tokend's (hack/image.sh), a pause image
#     (test/e2e/pause), busybox, and the workloads' images that the
#     examples name (test/e2e/consumer);
#  4. renders the static pods from the manifests, printing each change
#     (test/e2e/staticpod);
#  5. in a network and mount namespace of its own (a bridge as the node's
#     interface, only loopback reached; /run, /var/lib and /var/log
#     overlaid, so nothing on the host changes), starts containerd and a
#     standalone kubelet, and runs test/e2e/driver: the stand-in control
#     plane and API server, the scenarios, the table;
#  6. stops everything it started and removes what it made: no process is
#     left running, and the host's files, sysctls and cgroups are as they
#     were.
#
# Environment:
#   KUBELET_VERSION, CACHE_DIR   as for hack/build-kubelet.sh
#   TOKEND_BINARY                a tokend binary built already (hack/build.sh),
#                                e.g. from another branch, instead of this
#                                checkout's
#   KEEP=1                       keep the state directory (logs) after the run
#
# Exit status: 0 when no scenario failed, 1 otherwise.
set -euo pipefail
self=$(readlink -f "${BASH_SOURCE[0]}")
cd "$(dirname "$self")/.."

die() {
	echo "e2e-kubelet.sh: $*" >&2
	exit 1
}

# The sysctls the kubelet insists on with protectKernelDefaults. Inside the
# mount namespace it sees them through files bind-mounted over /proc/sys,
# so that it neither refuses to start nor writes them machine-wide.
sysctls=(vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1
	kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000)

node_ip=192.0.2.1 # TEST-NET-1: the bridge's address; nothing routes there
node_name=e2e-node
pause_image=tokend-e2e.local/pause:1

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- inside
# Runs as the first process of the new network and mount namespaces.
inside() {
	local S=$E2E_STATE t0
	t0=$(now)
	local sock=$S/containerd.sock
	# Globals: the EXIT trap runs after this function has returned.
	ctr=(ctr -a "$sock" -n k8s.io)
	kubelet_pid='' containerd_pid=''
	readlink /proc/self/ns/mnt >"$S/node-mntns"

	# shellcheck disable=SC2317 # run by the EXIT trap
	inside_cleanup() {
		set +e
		[[ -n "$kubelet_pid" ]] && kill "$kubelet_pid" && wait "$kubelet_pid"
		if [[ -n "$containerd_pid" ]]; then
			local id
			for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
				"${ctr[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1
			done
			for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
				"${ctr[@]}" tasks delete -f "$id" >/dev/null 2>&1
			done
			kill "$containerd_pid" && wait "$containerd_pid"
		fi
		# Whatever else runs in this mount namespace was started here
		# (containerd's shims): end it by pid.
		local self p pid
		self=$(readlink /proc/self/ns/mnt)
		for p in /proc/[0-9]*; do
			pid=${p#/proc/}
			[[ "$pid" == "$$" || "$pid" == "$BASHPID" || "$pid" == "$PPID" ]] && continue
			[[ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" == "$self" ]] && kill -KILL "$pid" 2>/dev/null
		done
	}
	trap inside_cleanup EXIT

	# The node's network: loopback, and an empty bridge as its interface.
	ip link set lo up
	ip link add e2e0 type bridge
	ip addr add "$node_ip/24" dev e2e0
	ip link set e2e0 up

	# What the kubelet and containerd write outside their state directory
	# lands in overlays that vanish with this mount namespace.
	local d n
	for d in /run /var/lib /var/log; do
		n=$S/overlay/${d//\//_}
		mkdir -p "$n/upper" "$n/work"
		mount -t overlay overlay -o "lowerdir=$d,upperdir=$n/upper,workdir=$n/work" "$d"
	done
	local kv k v
	mkdir -p "$S/sysctl"
	for kv in "${sysctls[@]}"; do
		k=${kv%%=*} v=${kv#*=}
		if [[ "$(cat "/proc/sys/$k")" != "$v" ]]; then
			echo "$v" >"$S/sysctl/${k//\//.}"
			mount --bind "$S/sysctl/${k//\//.}" "/proc/sys/$k"
			echo "sysctl $k reads $v inside the node's mount namespace only"
		fi
	done

	mkdir -p "$S/containerd" "$S/runc" "$S/static" "$S/pod-logs" "$S/kubelet" "$S/volume-plugins" "$S/cni/bin" "$S/cni/conf"
	cat >"$S/containerd.toml" <<-EOF
		version = 2
		root = "$S/containerd/root"
		state = "$S/containerd/state"
		disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
		[grpc]
		  address = "$sock"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$S/containerd/opt"
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "$pause_image"
		  # root without CAP_SYS_RESOURCE cannot lower oom_score_adj
		  restrict_oom_score_adj = true
		  [plugins."io.containerd.grpc.v1.cri".containerd]
		    snapshotter = "overlayfs"
		    default_runtime_name = "runc"
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"
		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
		        SystemdCgroup = false
		        Root = "$S/runc"
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "$S/cni/bin"
		    conf_dir = "$S/cni/conf"
	EOF
	containerd --config "$S/containerd.toml" >"$S/containerd.log" 2>&1 &
	containerd_pid=$!
	local i
	for ((i = 0; i < 300; i++)); do
		"${ctr[@]}" version >/dev/null 2>&1 && break
		kill -0 "$containerd_pid" 2>/dev/null || die "containerd stopped; its log: $S/containerd.log"
		sleep 0.2
	done
	"${ctr[@]}" version >/dev/null || die "containerd did not answer on $sock; its log: $S/containerd.log"
	local img
	for img in "$S"/images/*.tar; do
		"${ctr[@]}" images import "$img" >/dev/null
	done
	echo "images in the node: $("${ctr[@]}" images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

	cat >"$S/kubelet.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		address: 127.0.0.1
		readOnlyPort: 10255
		healthzBindAddress: 127.0.0.1
		healthzPort: 10248
		authentication:
		  anonymous: {enabled: true}
		  webhook: {enabled: false}
		authorization: {mode: AlwaysAllow}
		staticPodPath: $S/static
		fileCheckFrequency: 1s
		podLogsDir: $S/pod-logs
		volumePluginDir: $S/volume-plugins
		containerRuntimeEndpoint: unix://$sock
		cgroupDriver: cgroupfs
		cgroupRoot: /$E2E_CGROUP
		failCgroupV1: false
		failSwapOn: false
		protectKernelDefaults: true
		resolvConf: ""
		registerNode: false
		serializeImagePulls: false
	EOF
	"$E2E_KUBELET" --config "$S/kubelet.yaml" --root-dir "$S/kubelet" --cert-dir "$S/kubelet/pki" \
		--hostname-override "$node_name" --node-ip "$node_ip" >"$S/kubelet.log" 2>&1 &
	kubelet_pid=$!
	for ((i = 0; i < 300; i++)); do
		[[ "$(curl -s -m 2 http://127.0.0.1:10248/healthz 2>/dev/null)" == ok ]] && break
		kill -0 "$kubelet_pid" 2>/dev/null || die "the kubelet stopped; its log: $S/kubelet.log"
		sleep 0.2
	done
	[[ "$(curl -s -m 2 http://127.0.0.1:10248/healthz)" == ok ]] || die "the kubelet is not healthy; its log: $S/kubelet.log"
	local node_start
	node_start=$(since "$t0")
	echo "node up in $node_start s: containerd $(containerd --version | awk '{print $3}'), $("$E2E_KUBELET" --version)"

	local rc=0
	"$S/bin/driver" run -dir "$S/keys" -pods "$S/pods" -static "$S/static" -logs "$S/pod-logs" \
		-node "$node_name" -ctr "${ctr[*]}" \
		-cost "kubelet build (cached: its --version checked)=$E2E_COST_KUBELET" \
		-cost "images and static pods=$E2E_COST_IMAGES" \
		-cost "node start (containerd, images loaded, kubelet healthy)=$node_start" || rc=$?
	return "$rc"
}

if [[ "${1:-}" == --inside ]]; then
	inside
	exit $?
fi

# ---------------------------------------------------------------- outside
[[ $EUID -eq 0 ]] || die "run as root: it starts containerd and a kubelet in namespaces of their own"
[[ "$(uname -s)" == Linux ]] || die "Linux only"

# Debian's busybox package is linked dynamically; the images need busybox-static.
missing=()
for p in containerd runc busybox-static; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "installing ${missing[*]} with apt-get"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for c in ip unshare curl mount; do
	command -v "$c" >/dev/null || die "$c is missing: install iproute2, util-linux, curl and mount"
done

start=$(now)
t=$start
kubelet=$(hack/build-kubelet.sh)
cost_kubelet=$(since "$t")
echo "kubelet: $kubelet ($("$kubelet" --version))"

S=$(mktemp -d "${TMPDIR:-/tmp}/tokend-e2e.XXXXXX")
cgroup=tokend-e2e-$$
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	set +e
	local d p pid ns left i
	# The node's own cleanup stops everything it started; should it have
	# failed, whatever still runs in the node's mount namespace was started
	# by this script: end it by pid.
	ns=$(cat "$S/node-mntns" 2>/dev/null)
	if [[ -n "$ns" ]]; then
		for p in /proc/[0-9]*; do
			pid=${p#/proc/}
			if [[ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" == "$ns" ]]; then
				echo "ending pid $pid, left running in the node: $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-80)" >&2
				kill -KILL "$pid" 2>/dev/null
			fi
		done
	fi
	for ((i = 0; i < 100; i++)); do
		left=0
		for d in /sys/fs/cgroup/*/"$cgroup"; do
			[[ -d "$d" ]] || continue
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
			[[ -d "$d" ]] && left=1
		done
		((left)) || break
		sleep 0.1
	done
	((left)) && echo "e2e-kubelet.sh: could not remove the cgroups /sys/fs/cgroup/*/$cgroup" >&2
	if [[ "${KEEP:-}" == 1 ]]; then
		echo "kept $S"
	else
		rm -rf "$S"
	fi
}
trap cleanup EXIT
# The kubelet's cgroupRoot, in every cgroup v1 hierarchy; removed afterwards.
for d in /sys/fs/cgroup/*/; do
	[[ -f "$d/cgroup.procs" && "$(stat -f -c %T "$d")" == cgroupfs ]] && mkdir -p "$d/$cgroup"
done

t=$(now)
mkdir -p "$S/bin" "$S/images" "$S/keys" "$S/pods"
go build -o "$S/bin/" ./test/e2e/pause ./test/e2e/driver
OUT=$S/images/tokend.tar IMAGE=ghcr.io/ambient-code/tokend:latest BINARY=${TOKEND_BINARY:-} hack/image.sh >/dev/null
ociimage() { GOOS='' GOARCH='' go run ./hack/ociimage "$@" >/dev/null; }
ociimage -o "$S/images/pause.tar" -name "$pause_image" -add "$S/bin/pause:/pause" -entrypoint /pause -user 65535:65535
bb=(-add "$(command -v busybox):/bin/busybox")
for a in $(busybox --list-full); do
	[[ "$a" == bin/busybox ]] || bb+=(-symlink "/$a:/bin/busybox")
done
ociimage -o "$S/images/busybox.tar" -name docker.io/library/busybox:1.36 "${bb[@]}" -cmd sh
workload() { # NAME SCRIPT
	ociimage -o "$S/images/${1//[\/:]/_}.tar" -name "$1" "${bb[@]}" \
		-add "test/e2e/consumer/$2:/e2e/$2" -entrypoint /bin/sh -entrypoint "/e2e/$2"
}
workload registry.example/runner:2.3 reader.sh
workload registry.example/mcp-server:0.9 reader.sh
workload registry.example/git-credentials:1.4 sidecar.sh
workload registry.example/git:2.45 git.sh
"$S/bin/driver" prepare -dir "$S/keys"
echo "== static pods, from the manifests; each change:"
(cd test/e2e/staticpod && go run ./cmd/staticpods -out "$S/pods" -public-key "$S/keys/cp.pub" -ca "$S/keys/upstream-ca.pem")
cost_images=$(since "$t")

echo "== node: containerd and kubelet in a network and mount namespace of their own"
rc=0
E2E_STATE=$S E2E_KUBELET=$kubelet E2E_CGROUP=$cgroup E2E_COST_KUBELET=$cost_kubelet E2E_COST_IMAGES=$cost_images \
	unshare --net --mount --propagation private --fork --kill-child -- "$self" --inside || rc=$?
echo "e2e-kubelet.sh: $(since "$start") s in all, exit status $rc"
exit "$rc"
