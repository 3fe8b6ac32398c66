-- Views the API and the CLI read: what waits for a decision, and how decisions have gone.
CREATE VIEW pending_approvals AS
SELECT r.id,
       r.workflow_id,
       r.risk_level,
       r.required_approvals,
       r.allowed_roles,
       r.requester,
       r.plan,
       r.plan_hash,
       r.assessment,
       r.created_at,
       r.expires_at,
       (SELECT count(*) FROM approval_actions a
         WHERE a.approval_id = r.id AND a.action = 'approve') AS approvals_received
  FROM approval_requests r
 WHERE r.status = 'pending' AND r.expires_at > now();

CREATE VIEW approval_statistics AS
SELECT risk_level,
       count(*)                                          AS total,
       count(*) FILTER (WHERE status = 'pending')        AS pending,
       count(*) FILTER (WHERE status = 'approved')       AS approved,
       count(*) FILTER (WHERE status = 'rejected')       AS rejected,
       count(*) FILTER (WHERE status = 'expired')        AS expired,
       count(*) FILTER (WHERE status = 'withdrawn')      AS withdrawn,
       avg(extract(epoch FROM decided_at - created_at))
           FILTER (WHERE decided_at IS NOT NULL)         AS avg_decision_seconds
  FROM approval_requests
 GROUP BY risk_level;
