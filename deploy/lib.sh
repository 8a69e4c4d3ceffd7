# Shared by install.sh and upgrade.sh (sourced, not run). Paths are under SIRA_ROOT (default /),
# so that the scripts can be tried in a scratch directory; SIRA_DRY_RUN=1 prints, instead of
# running, every command that needs root or touches the system outside SIRA_ROOT (apt, useradd,
# chown, PostgreSQL, systemctl, pip).
# shellcheck shell=bash disable=SC2034 # the paths and choices are read by the scripts that source it

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="${SIRA_ROOT:-}"
DRY_RUN="${SIRA_DRY_RUN:-0}"
APP_DIR="$ROOT/opt/sira"
ETC_DIR="$ROOT/etc/sira"
ENV_FILE="$ETC_DIR/sira.env"
STATE_DIR="$ROOT/var/lib/sira"
UNIT_DIR="$ROOT/etc/systemd/system"
TMPFILES_DIR="$ROOT/etc/tmpfiles.d"
SIRA_USER="${SIRA_USER:-sira}"
# The processes of this machine: callback pools and admin pools by port, workers by number.
CALLBACK_PORTS="${SIRA_CALLBACK_PORTS:-5001 5002}"
ADMIN_PORTS="${SIRA_ADMIN_PORTS:-5000}"
WORKERS="${SIRA_WORKERS:-1 2}"
# The venv's interpreter: Debian's, which install.sh has just installed. Not `python3` from root's
# PATH: a pyenv or conda one lives under /root, where the sira user cannot run it.
PYTHON="${SIRA_PYTHON:-/usr/bin/python3}"
SMPP="${SIRA_SMPP:-0}"

say() { printf '==> %s\n' "$*"; }
fail() { printf 'sira: %s\n' "$*" >&2; exit 1; }

# Run a command that changes the system; under SIRA_DRY_RUN=1, print it instead.
run() {
	if [ "$DRY_RUN" = 1 ]; then
		printf '+ %s\n' "$*"
	else
		"$@"
	fi
}

require_root() {
	if [ "$DRY_RUN" != 1 ] && [ "$(id -u)" != 0 ]; then
		fail "run as root (or SIRA_DRY_RUN=1 SIRA_ROOT=/tmp/scratch to see what it would do)"
	fi
}

# The release's name: the commit it was made from, else the time.
release_name() {
	if [ -n "${SIRA_RELEASE:-}" ]; then
		printf '%s\n' "$SIRA_RELEASE"
	elif git -C "$SRC" rev-parse --short=12 HEAD >/dev/null 2>&1; then
		git -C "$SRC" rev-parse --short=12 HEAD
	else
		date -u +%Y%m%dT%H%M%SZ
	fi
}

# Copy the code into releases/NAME with its own venv; a release already complete is left alone,
# so running again changes nothing, and the release in use is never modified under its processes.
install_release() {
	local name="$1" dest="$APP_DIR/releases/$1"
	if [ -f "$dest/.installed" ]; then
		say "release $name is already installed"
		return
	fi
	say "installing release $name into $dest"
	rm -rf "$dest"
	mkdir -p "$dest"
	tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./instance --exclude=__pycache__ \
		--exclude=./.pytest_cache --exclude=./.ruff_cache -cf - . | tar -C "$dest" -xf -
	run "$PYTHON" -m venv "$dest/.venv"
	run "$dest/.venv/bin/pip" install --no-input --disable-pip-version-check --quiet -r "$dest/requirements.txt"
	touch "$dest/.installed"
}

# Install the unit files, the shared drop-in and the runtime directory's rule; reload systemd.
install_units() {
	say "installing systemd units into $UNIT_DIR"
	mkdir -p "$UNIT_DIR" "$TMPFILES_DIR"
	local unit
	for unit in "$SRC"/deploy/systemd/*.service "$SRC"/deploy/systemd/*.timer "$SRC"/deploy/systemd/*.target; do
		install -m 0644 "$unit" "$UNIT_DIR/"
	done
	local dropin
	for dropin in "$SRC"/deploy/systemd/*.service.d; do
		mkdir -p "$UNIT_DIR/$(basename "$dropin")"
		install -m 0644 "$dropin"/*.conf "$UNIT_DIR/$(basename "$dropin")/"
	done
	install -m 0644 "$SRC/deploy/tmpfiles.d/sira.conf" "$TMPFILES_DIR/sira.conf"
	run systemd-tmpfiles --create "$TMPFILES_DIR/sira.conf"
	run systemctl daemon-reload
}

# Run a flask command of release NAME as the service user, with the service's settings.
as_sira() {
	local name="$1"
	shift
	run runuser -u "$SIRA_USER" -- env SIRA_ENV_FILE="$ENV_FILE" "$APP_DIR/releases/$name/deploy/sira-flask" "$@"
}

# Every web unit of this machine, by pool: "sira-callbacks@5001 sira-callbacks@5002 ...".
web_units() {
	local port
	for port in $CALLBACK_PORTS; do printf 'sira-callbacks@%s ' "$port"; done
	for port in $ADMIN_PORTS; do printf 'sira-admin@%s ' "$port"; done
}

worker_units() {
	local n
	for n in $WORKERS; do printf 'sira-worker@%s ' "$n"; done
}

# Wait until the web process on PORT answers /healthz with 200 (it checks the database and Redis).
wait_healthy() {
	local port="$1" tries=60
	[ "$DRY_RUN" = 1 ] && { printf '+ wait for http://127.0.0.1:%s/healthz\n' "$port"; return; }
	while [ "$tries" -gt 0 ]; do
		if python3 -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=2).status != 200)" 2>/dev/null; then
			return
		fi
		sleep 1
		tries=$((tries - 1))
	done
	fail "127.0.0.1:$port/healthz did not answer 200 within a minute (journalctl -u 'sira-*@$port')"
}
