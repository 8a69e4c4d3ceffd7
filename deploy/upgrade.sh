#!/usr/bin/env bash
# Upgrade Sira to the code beside this script, with no USSD step lost:
#   1. install the new release beside the running one (its own venv; the running code is untouched);
#   2. back the database up, then migrate it (a migration must suit the old code too: see
#      docs/operations.md, "Migrations during an upgrade");
#   3. point /opt/sira/current at the new release;
#   4. restart one process at a time: each callback pool is stopped gracefully (it finishes the
#      steps under way while nginx sends new ones to the other pool) and answers /healthz before
#      the next one goes; then the admin pools, the workers (warm shutdown: the job under way
#      finishes), and the SMPP connector (it finishes its steps and unbinds; what arrives meanwhile
#      is delivered again by the gateway).
# Running it again for the same release migrates nothing and restarts the processes one by one.
#
#   deploy/upgrade.sh            SIRA_SKIP_BACKUP=1 skips step 2's backup (not advised)
#   deploy/upgrade.sh --restart              the same release, restarted one process at a time
#                                                 (after editing /etc/sira/sira.env)
#   deploy/upgrade.sh --rollback RELEASE     point back at an older release and restart (no downgrade)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

require_root
[ -f "$ENV_FILE" ] || fail "$ENV_FILE is missing: run deploy/install.sh first"

if [ "${1:-}" = "--restart" ]; then
	RELEASE="$(basename "$(readlink "$APP_DIR/current")")"
elif [ "${1:-}" = "--rollback" ]; then
	RELEASE="${2:-}"
	[ -f "$APP_DIR/releases/$RELEASE/.installed" ] || fail "no installed release '$RELEASE' in $APP_DIR/releases"
else
	RELEASE="$(release_name)"
	install_release "$RELEASE"
	install_units
	PREVIOUS="$(readlink "$APP_DIR/current" 2>/dev/null || true)"
	if [ -n "$PREVIOUS" ] && [ "${SIRA_SKIP_BACKUP:-0}" != 1 ]; then
		say "backup before migrating"
		as_sira "$(basename "$PREVIOUS")" backup
	fi
	say "migrations"
	as_sira "$RELEASE" check
	as_sira "$RELEASE" db upgrade
fi
ln -sfn "releases/$RELEASE" "$APP_DIR/current"

# One process at a time; a web pool must answer /healthz before the next one is touched.
restart_web() {
	local unit="$1" port="${1#*@}"
	if [ "$DRY_RUN" = 1 ] || systemctl is-enabled --quiet "$unit"; then
		say "restarting $unit"
		run systemctl restart "$unit"
		wait_healthy "$port"
	fi
}

for unit in $(web_units); do
	restart_web "$unit"
done
for unit in $(worker_units) sira-smpp; do
	if [ "$DRY_RUN" = 1 ] || systemctl is-active --quiet "$unit"; then
		say "restarting $unit"
		run systemctl restart "$unit"
	fi
done

# Keep the three newest releases (the one in use among them) for a rollback.
find "$APP_DIR/releases" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n +4 |
	while read -r _ old; do
		[ "$(readlink -f "$old")" = "$(readlink -f "$APP_DIR/current")" ] || rm -rf "$old"
	done
say "Sira $RELEASE is running."
