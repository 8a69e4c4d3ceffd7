#!/usr/bin/env bash
# Install Sira on a Debian machine, or bring an installed one back in line: safe to run again.
# Makes the packages, the sira user, the directories, the settings (secrets generated once, never
# overwritten), the release and its venv, the PostgreSQL role and database, the migrations, and
# the systemd units, then starts them. docs/operations.md walks through it.
#
#   deploy/install.sh
#   SIRA_DRY_RUN=1 SIRA_ROOT=/tmp/scratch deploy/install.sh     # files under /tmp/scratch, commands printed
#
# Settings (environment): SIRA_CALLBACK_PORTS ("5001 5002"), SIRA_ADMIN_PORTS ("5000"),
# SIRA_WORKERS ("1 2"), SIRA_SMPP (0; 1 starts the SMPP connector), SIRA_SKIP_PACKAGES (0),
# SIRA_RELEASE (the commit), SIRA_PYTHON (/usr/bin/python3, the venv's interpreter).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

require_root

if [ "${SIRA_SKIP_PACKAGES:-0}" != 1 ]; then
	say "Debian packages"
	run apt-get install -y --no-install-recommends python3 python3-venv postgresql postgresql-client \
		redis-server nginx
fi

if id "$SIRA_USER" >/dev/null 2>&1; then
	say "user $SIRA_USER exists"
else
	say "making the system user $SIRA_USER"
	run useradd --system --home-dir /var/lib/sira --no-create-home --shell /usr/sbin/nologin "$SIRA_USER"
fi

say "directories"
mkdir -p "$APP_DIR/releases" "$ETC_DIR" "$STATE_DIR/spool" "$STATE_DIR/backups"
chmod 0750 "$ETC_DIR" "$STATE_DIR" "$STATE_DIR/spool" "$STATE_DIR/backups"
run chown root:"$SIRA_USER" "$ETC_DIR"
run chown -R "$SIRA_USER:$SIRA_USER" "$STATE_DIR"

# A 32+ character secret for SECRET_KEY, PHONE_HASH_KEY and CALLBACK_SECRET.
token() { python3 -c "import secrets; print(secrets.token_urlsafe(48))"; }
# ENCRYPTION_KEYS' first key: 32 random bytes in base64url, under the id k1.
encryption_key() { python3 -c "import base64, os; print('k1:' + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip('='))"; }

# Give KEY a generated value if (and only if) its line is blank: a secret once set is never replaced.
fill_secret() {
	local key="$1" value="$2"
	if grep -q "^$key=$" "$ENV_FILE"; then
		sed -i "s|^$key=$|$key=$value|" "$ENV_FILE"
		say "generated $key"
		GENERATED=1
	fi
}

GENERATED=0
if [ ! -f "$ENV_FILE" ]; then
	say "settings: $ENV_FILE from deploy/sira.env.template"
	install -m 0640 "$SRC/deploy/sira.env.template" "$ENV_FILE"
fi
fill_secret SECRET_KEY "$(token)"
fill_secret PHONE_HASH_KEY "$(token)"
fill_secret CALLBACK_SECRET "$(token)"
fill_secret ENCRYPTION_KEYS "$(encryption_key)"
chmod 0640 "$ENV_FILE"
run chown root:"$SIRA_USER" "$ENV_FILE"

RELEASE="$(release_name)"
install_release "$RELEASE"
install_units

# The database: a role named after the system user, logging in through the local socket (peer),
# and its database. Only for the default local DATABASE_URL; a remote one is made by its DBA.
if grep -q '^DATABASE_URL="postgresql://sira@/sira?host=/var/run/postgresql"$' "$ENV_FILE"; then
	say "PostgreSQL role and database sira"
	run runuser -u postgres -- psql --quiet -v ON_ERROR_STOP=1 -d postgres -c \
		"DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sira') THEN CREATE ROLE sira LOGIN; END IF; END \$\$;"
	if [ "$DRY_RUN" = 1 ] || ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'sira'" | grep -q 1; then
		run runuser -u postgres -- createdb --owner=sira --encoding=UTF8 --template=template0 sira
	fi
else
	say "DATABASE_URL is not the local default: the role and database are assumed made (docs/operations.md)"
fi

say "migrations"
as_sira "$RELEASE" check
as_sira "$RELEASE" db upgrade
ln -sfn "releases/$RELEASE" "$APP_DIR/current"

say "starting"
# shellcheck disable=SC2046 # the unit lists are words
run systemctl enable --now sira.target $(web_units) $(worker_units) sira-backup.timer
if [ "$SMPP" = 1 ]; then
	run systemctl enable --now sira-smpp.service
fi
for port in $CALLBACK_PORTS $ADMIN_PORTS; do
	wait_healthy "$port"
done

say "Sira $RELEASE is installed and running."
if [ "$GENERATED" = 1 ]; then
	say "New secrets were written to $ENV_FILE: copy ENCRYPTION_KEYS and PHONE_HASH_KEY to the escrow NOW"
	say "(docs/operations.md, 'Secrets and keys'); a backup without them cannot be read."
fi
say "Next: nginx (deploy/nginx/), the first admin account:"
say "  runuser -u $SIRA_USER -- $APP_DIR/current/deploy/sira-flask create-user you@example.org --role admin"
