#!/usr/bin/env bash
# Sourced by the fetch_*.sh scripts: fetch one pinned npm package with `npm pack`, check its
# tarball against a pinned SHA-256 before anything is extracted, extract it (or only the listed
# members) and leave a marker so that a second run does nothing.
#
#   npm_fetch_verified TAG PACKAGE VERSION SHA256 DEST KEEP_TARBALL CHECK_FILE [MEMBER...]
#     TAG: name used in messages; CHECK_FILE: a file (relative to DEST) that a finished run leaves;
#     KEEP_TARBALL: yes|no; MEMBER...: tarball members to extract (default: everything).

npm_fetch_verified() {
  local tag="$1" package="$2" version="$3" sha256="$4" dest="$5" keep="$6" check="$7"
  shift 7
  local tarball
  tarball="$(echo "${package}" | sed 's|^@||; s|/|-|')-${version}.tgz"
  mkdir -p "${dest}"
  (
    cd "${dest}"
    verify() { echo "${sha256}  ${tarball}" | sha256sum --check --status; }
    if [[ -f ".extracted-${sha256}" && -f "${check}" ]]; then
      echo "${tag} ${version} already present in ${dest}"
      exit 0
    fi
    if [[ ! -f "${tarball}" ]] || ! verify; then
      rm -f "${tarball}"
      command -v npm >/dev/null || { echo "${tag}: npm is required (apt-get install npm)" >&2; exit 1; }
      npm pack --silent "${package}@${version}" >/dev/null
    fi
    if ! verify; then
      echo "${tag}: SHA-256 of ${tarball} does not match the pinned value; refusing it" >&2
      rm -f "${tarball}"
      exit 1
    fi
    rm -rf package .extracted-*
    tar xzf "${tarball}" "$@"
    [[ "${keep}" == yes ]] || rm -f "${tarball}"
    touch ".extracted-${sha256}"
    echo "${tag} ${version} extracted to ${dest}/package"
  )
}
