// What the audit log says about the key store file: the changes logged after the file's last save
// that the file does not hold (internal; used by KeyStore::Open).
#pragma once

#include <string>
#include <vector>

#include "veil/keys/audit_log.h"

namespace veil::keys::internal {

// True for the actions that change the key store file (each is logged, then saved).
bool ChangesStore(AuditAction action);

// The successful changes among `since_save` (the log's records after the store file's last save,
// in order) that no later record accounts for: a "failed" record of the same change (a save that
// failed, or an earlier open that found it missing) or a recovery of the store file from its
// backup (which names what it undoes). A change is logged before its save, so one such change is
// an interrupted save (or the file put back one generation); more mean an older file was put back.
std::vector<AuditEntry> UnsavedChanges(const std::vector<AuditEntry>& since_save, const std::string& store_file);

// "record 12 (principal-revoked bob)".
std::string DescribeChange(const AuditEntry& entry);

}  // namespace veil::keys::internal
