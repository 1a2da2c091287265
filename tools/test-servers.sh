#!/usr/bin/env bash
# Installs the real components the tests start themselves (Orthanc + DICOMweb plugin, PostgreSQL 15,
# Xvfb and the xcb libraries PySide6 needs, dicom3tools, dcmtk) when any is missing, with apt, as root.
# Without root or apt it installs nothing and says what is missing; those tests then skip locally
# (under CI=true they fail instead: CI must run them).
set -u
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }
have Orthanc || need+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || ls /usr/lib/orthanc/*DicomWeb* >/dev/null 2>&1 \
  || ls /usr/share/orthanc/plugins/*DicomWeb* >/dev/null 2>&1 || need+=(orthanc-dicomweb)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
have Xvfb || need+=(xvfb x11-utils xdotool imagemagick libxcb-icccm4 libxcb-keysyms1 libxcb-image0
                    libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0
                    libxcb-shape0)
have xwininfo || need+=(x11-utils)
have xdotool || need+=(xdotool)
have dciodvfy || need+=(dicom3tools)
have getscu || need+=(dcmtk)
have unshare || need+=(util-linux)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "[test-servers] missing: ${need[*]} (install them with apt as root; their tests skip)" >&2
  exit 0
fi
echo "[test-servers] installing: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || apt-get install -y -qq "${need[@]}" \
  || echo "[test-servers] apt-get install failed for: ${need[*]}" >&2
exit 0
