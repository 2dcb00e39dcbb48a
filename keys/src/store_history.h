// What the audit log says about the key store file: the changes logged after the file's last save
// that the file does not hold (internal; used by KeyStore::Open and RecoverFromBackup).
#pragma once

#include <string>
#include <vector>

#include "veil/keys/audit_log.h"

namespace veil::keys::internal {

// True for the actions that change the key store file (each is logged, then saved).
bool ChangesStore(AuditAction action);

struct UnsavedChanges {
  // The successful changes among the records after a store file's last save that no later "failed"
  // record of the same change accounts for (a save that failed, an interrupted save found by an
  // open, a change undone by a recovery from the backup), in log order.
  std::vector<AuditEntry> missing;
  // True when no change that the file holds or that is accounted for was logged after the first
  // missing one: what a crash leaves (a change is logged, then saved, and the next open accounts
  // for an unsaved one before anything else can change). False means an older file was put back.
  bool trailing = true;
};
UnsavedChanges FindUnsavedChanges(const std::vector<AuditEntry>& since_save);

// True when a recovery of `store_file` was logged after record `sequence`.
bool RecoveredSince(const std::vector<AuditEntry>& records, uint64_t sequence, const std::string& store_file);

// "record 12 (principal-revoked bob)"; several joined with ", ".
std::string DescribeChanges(const std::vector<AuditEntry>& entries);

}  // namespace veil::keys::internal
