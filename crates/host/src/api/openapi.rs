//! The OpenAPI 3.1 document, written by hand (no generator in the dependency graph). A test
//! checks that its paths and methods are exactly [`super::routes`].

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": schema}}
    })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn body(name: &str) -> Value {
    json!({
        "required": true,
        "content": {"application/json": {"schema": reference(name)}}
    })
}

/// The errors every authenticated operation can answer, plus `extra` (status → description).
fn responses(success: (&str, Value), extra: &[(&str, &str)]) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(success.0.to_owned(), success.1);
    for (status, description) in [
        (
            "400",
            "More than one Authorization header (code bad_request).",
        ),
        ("401", "No token, or an invalid, expired or revoked one."),
        ("429", "Rate limited; see Retry-After."),
        (
            "503",
            "The database (or DNS) is unavailable, the request timed out, or too many changes \
             are in progress (then with Retry-After).",
        ),
    ]
    .iter()
    .chain(extra)
    {
        map.insert((*status).to_owned(), error_response(description));
    }
    Value::Object(map)
}

const NOT_FOUND: (&str, &str) = (
    "404",
    "No such domain, or one of another tenant (indistinguishable).",
);
const ADMIN_ONLY: (&str, &str) = (
    "404",
    "Not an administrator (tenant administration does not exist for others), or no such tenant.",
);
const INVALID: (&str, &str) = (
    "400",
    "Invalid input: error.field names the field (or the path of a JSON member name given twice), \
     error.rule the rule; or more than one Authorization header (code bad_request).",
);
const TOO_LARGE: (&str, &str) = ("413", "The body is larger than 64 KiB.");
const READ_ONLY: (&str, &str) = ("403", "The token is read-only.");
const CONFLICT: (&str, &str) = (
    "409",
    "The name is taken (by the caller's tenant; an administrator also sees other tenants'), \
     or the domain is being removed.",
);

const HOSTED_ELSEWHERE: (&str, &str) = (
    "404",
    "Another tenant hosts the name (answered as for any domain the caller cannot see); a \
     published claim moves it instead (see /api/v1/domains/{domain}/claim).",
);
const NOT_REMOVING_OR_BUSY: (&str, &str) = (
    "409",
    "The domain is not being removed (conflict), or another change of it is in progress (busy; \
     retry after the Retry-After seconds).",
);
const TOO_MANY_CLAIMS: (&str, &str) = ("409", "The tenant has 100 open claims.");
const NO_CLAIM: (&str, &str) = ("404", "The caller has no claim on this name.");
const CONFLICT_OR_BUSY: (&str, &str) = (
    "409",
    "The domain is being removed (conflict), or another change of it is in progress (busy; \
     retry after the Retry-After seconds).",
);
const BUSY: (&str, &str) = (
    "409",
    "Another change of the domain is in progress (busy); retry after the Retry-After seconds.",
);
const TOKEN_NOT_FOUND: (&str, &str) = (
    "404",
    "No such token, or one the caller may not see (another tenant's, or an administrator token \
     for an owner).",
);
const NOT_READ_ONLY: (&str, &str) = ("403", "The token is read-only: it cannot see tokens.");

fn domain_parameter() -> Value {
    json!([{
        "name": "domain", "in": "path", "required": true,
        "description": "The policy domain (any case; IDNs as U- or A-labels).",
        "schema": {"type": "string"}
    }])
}

/// `limit` and `cursor` of a paginated list (see [`super::PageParams`]).
fn page_parameters() -> Value {
    json!([
        {
            "name": "limit", "in": "query", "required": false,
            "description": "Rows per page: 1 to 500, default 100.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}
        },
        {
            "name": "cursor", "in": "query", "required": false,
            "description": "The next_cursor of the page before, unchanged (opaque).",
            "schema": {"type": "string"}
        }
    ])
}

/// A page of `items` under `member`, with the cursor of the next page.
fn page_of(member: &str, items: Value) -> Value {
    json!({
        "type": "object", "required": [member, "next_cursor"],
        "properties": {
            member: {"type": "array", "items": items},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as cursor for the next page; null on the last page."
            }
        }
    })
}

const REPORT_NOT_FOUND: (&str, &str) = (
    "404",
    "No such report, or one about no domain of the caller's tenant (indistinguishable).",
);

/// `days`: the window of a report view.
fn days_parameter() -> Value {
    json!({
        "name": "days", "in": "query", "required": false,
        "description": "The days up to today (UTC) to show: 30, 90 or 365.",
        "schema": {"type": "integer", "enum": [30, 90, 365], "default": 30}
    })
}

/// `kind`: one kind of report.
fn kind_parameter() -> Value {
    json!({
        "name": "kind", "in": "query", "required": false,
        "description": "Only TLS reports (tlsrpt) or DMARC aggregate reports (dmarc).",
        "schema": {"type": "string", "enum": ["tlsrpt", "dmarc"]}
    })
}

fn report_parameter() -> Value {
    json!([{
        "name": "id", "in": "path", "required": true,
        "description": "The report's id (from a report list).",
        "schema": {"type": "integer", "minimum": 1}
    }])
}

fn tenant_parameter() -> Value {
    json!([{
        "name": "tenant", "in": "path", "required": true,
        "schema": {"type": "string"}
    }])
}

/// The document served at `/api/v1/openapi.json`.
pub fn document() -> Value {
    let mut doc = document_without_alerts();
    super::alerts::extend_openapi(&mut doc);
    doc
}

fn document_without_alerts() -> Value {
    let detail = reference("DomainDetail");
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mtasts serve API",
            "version": "1",
            "description": "Hosted MTA-STS (RFC 8461) policies. Owners publish three CNAMEs once \
                (see records in a domain's detail); the service then serves the policy, its \
                certificate and the TXT id. Every change of the policy creates a new policy version \
                with a new id, published once every node serves it (RFC 8461 §8.1). Removing a domain serves \
                mode none for the old max_age first (§8.3). The service also answers the \
                domain's TLS-RPT record (RFC 8460 §3), naming its own report addresses \
                (unless reports_to_service is false) and the owner's rua, and a fourth CNAME is \
                listed; reports shows the DMARC rua to add to the owner's _dmarc record."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "security": [],
                    "responses": {"200": ok("The OpenAPI document.", json!({"type": "object"}))}
                }
            },
            "/api/v1/me": {
                "get": {
                    "summary": "Who the token acts as.",
                    "responses": responses(("200", ok("The principal.", reference("Me"))), &[])
                }
            },
            "/api/v1/domains": {
                "get": {
                    "summary": "The domains the token may see, a page at a time.",
                    "parameters": page_parameters(),
                    "responses": responses(("200", ok("A page of the domains, by name.",
                        page_of("domains", detail.clone()))), &[INVALID])
                },
                "post": {
                    "summary": "Host a new domain.",
                    "description": "Without mx, the domain's MX records are looked up and used. \
                        Refused with 400 (field domain): IP addresses in any spelling and numeric \
                        top-level labels, invalid xn-- labels, public suffixes (Public Suffix \
                        List), single labels, the service's own zone.",
                    "requestBody": body("CreateDomain"),
                    "responses": responses(("201", ok("The new domain; Location names it.", detail.clone())),
                        &[INVALID, READ_ONLY, HOSTED_ELSEWHERE, CONFLICT, TOO_LARGE])
                }
            },
            "/api/v1/domains/{domain}": {
                "parameters": domain_parameter(),
                "get": {
                    "summary": "A domain: its policy, ids, the records to publish and their status.",
                    "responses": responses(("200", ok("The domain.", detail.clone())), &[NOT_FOUND])
                },
                "patch": {
                    "summary": "Change mode, mx or max_age (a new version with a new id), or rua.",
                    "description": "Absent fields keep their value. rua: a string sets it, null \
                        removes it; reports_to_service: true or false. Without either the \
                        _smtp._tls record is gone. A change of rua or reports_to_service alone \
                        creates no policy version.",
                    "requestBody": body("UpdateDomain"),
                    "responses": responses(("200", ok("The domain.", detail.clone())),
                        &[INVALID, READ_ONLY, NOT_FOUND, CONFLICT_OR_BUSY, TOO_LARGE])
                },
                "delete": {
                    "summary": "Remove a domain safely (RFC 8461 §8.3).",
                    "description": "Serves mode none (max_age one day) under a new id until every \
                        policy ever served has expired from senders' caches (remove_after), then \
                        the domain disappears. Repeating the request changes nothing.",
                    "responses": responses(("202", ok("The domain, state removing.", detail.clone())),
                        &[READ_ONLY, NOT_FOUND, BUSY])
                }
            },
            "/api/v1/domains/{domain}/versions": {
                "parameters": domain_parameter(),
                "get": {
                    "summary": "The policy versions, newest first, a page at a time.",
                    "parameters": page_parameters(),
                    "responses": responses(("200", ok("A page of the history.",
                        page_of("versions", reference("Version")))), &[INVALID, NOT_FOUND])
                }
            },
            "/api/v1/domains/{domain}/restore": {
                "parameters": domain_parameter(),
                "post": {
                    "summary": "Cancel a removal under way (RFC 8461 §8.3).",
                    "description": "The domain is active again; the policy served before the \
                        removal returns as a new version with a new id, published like any change. \
                        409 when the domain is not being removed, or busy while another change of it                         is in progress.",
                    "responses": responses(("200", ok("The domain, state active.", detail.clone())),
                        &[READ_ONLY, NOT_FOUND, NOT_REMOVING_OR_BUSY])
                }
            },
            "/api/v1/domains/{domain}/claim": {
                "parameters": domain_parameter(),
                "post": {
                    "summary": "Claim a domain: the TXT record that proves control of it.",
                    "description": "Issued for any valid name, hosted or not; asking again while \
                        the claim is open returns the same record. Publish txt_value as a TXT \
                        record at txt_name, then POST /api/v1/domains: a domain another tenant \
                        hosts moves to the claiming tenant (otherwise that answers 404, as for \
                        any domain the caller cannot see). A claim lasts 7 days; a tenant has at \
                        most 100 open. Body: none, or {\"tenant\": name} for administrators.",
                    "requestBody": {"required": false, "content": {"application/json": {
                        "schema": reference("ClaimBody")}}},
                    "responses": responses(("201", ok("The claim.", reference("Claim"))),
                        &[INVALID, READ_ONLY, TOO_MANY_CLAIMS, TOO_LARGE])
                },
                "delete": {
                    "summary": "Withdraw the caller's claim on a domain.",
                    "requestBody": {"required": false, "content": {"application/json": {
                        "schema": reference("ClaimBody")}}},
                    "responses": responses(("204", json!({"description": "Withdrawn."})),
                        &[INVALID, READ_ONLY, NO_CLAIM])
                }
            },
            "/api/v1/domains/{domain}/verify": {
                "parameters": domain_parameter(),
                "post": {
                    "summary": "Verify the domain's records now and store the result.",
                    "description": "503 when on-demand verification is not configured.",
                    "responses": responses(("200", ok("The domain.", detail)), &[NOT_FOUND])
                }
            },
            "/api/v1/tenants": {
                "get": {
                    "summary": "Every tenant (administrators).",
                    "responses": responses(("200", ok("The tenants.", json!({
                        "type": "object", "required": ["tenants"],
                        "properties": {"tenants": {"type": "array", "items": reference("Tenant")}}
                    }))), &[ADMIN_ONLY])
                },
                "post": {
                    "summary": "Create a tenant (administrators).",
                    "requestBody": body("CreateTenant"),
                    "responses": responses(("201", ok("The tenant.", reference("Tenant"))),
                        &[INVALID, ADMIN_ONLY, CONFLICT, TOO_LARGE])
                }
            },
            "/api/v1/tenants/{tenant}/tokens": {
                "parameters": tenant_parameter(),
                "post": {
                    "summary": "Create an API token for a tenant (administrators).",
                    "description": "The token is in this answer only; just its hash is stored. \
                        With expires_in_days it is refused from expires_at on.",
                    "requestBody": body("CreateToken"),
                    "responses": responses(("201", ok("The token.", reference("NewToken"))),
                        &[INVALID, ADMIN_ONLY, TOO_LARGE])
                }
            },
            "/api/v1/tokens": {
                "get": {
                    "summary": "The API tokens the caller may see (administrators: all; owners: \
                        their tenant's), oldest first, expired ones included.",
                    "description": "Never a token's text or hash.",
                    "responses": responses(("200", ok("The tokens.", json!({
                        "type": "object", "required": ["tokens"],
                        "properties": {"tokens": {"type": "array", "items": reference("Token")}}
                    }))), &[NOT_READ_ONLY])
                }
            },
            "/api/v1/tokens/{id}": {
                "parameters": [{
                    "name": "id", "in": "path", "required": true,
                    "description": "The token's id (from the token list or its creation).",
                    "schema": {"type": "integer"}
                }],
                "delete": {
                    "summary": "Revoke a token (administrators: any; owners: their tenant's).",
                    "description": "The token is deleted: every node refuses it from the next \
                        request on, and dashboard sessions opened with it end.",
                    "responses": responses(("204", json!({"description": "Revoked."})),
                        &[READ_ONLY, TOKEN_NOT_FOUND])
                }
            },
            "/api/v1/tenants/{tenant}/users": {
                "parameters": tenant_parameter(),
                "post": {
                    "summary": "Create a dashboard user for a tenant (administrators).",
                    "requestBody": body("CreateUser"),
                    "responses": responses(("201", ok("The user.", reference("User"))),
                        &[INVALID, ADMIN_ONLY, CONFLICT, TOO_LARGE])
                }
            },
            "/api/v1/domains/{domain}/reports/tls": {
                "parameters": domain_parameter(),
                "get": {
                    "summary": "The domain's TLS reports (RFC 8460): sessions per day and failures \
                        by result type, receiving MX and IP, organization and sending IP.",
                    "description": "Days and totals come from the daily rollups (kept past the \
                        raw reports' retention); the breakdowns from the reports still stored.",
                    "parameters": [days_parameter()],
                    "responses": responses(("200", ok("The TLS view.", reference("TlsView"))),
                        &[INVALID, NOT_FOUND])
                }
            },
            "/api/v1/domains/{domain}/reports/dmarc": {
                "parameters": domain_parameter(),
                "get": {
                    "summary": "The domain's DMARC aggregate reports: messages per day by \
                        disposition, pass rate, and the sources with what quarantine and reject \
                        would have done to each.",
                    "parameters": [days_parameter()],
                    "responses": responses(("200", ok("The DMARC view.", reference("DmarcView"))),
                        &[INVALID, NOT_FOUND])
                }
            },
            "/api/v1/domains/{domain}/readiness": {
                "parameters": domain_parameter(),
                "get": {
                    "summary": "Whether the domain can move to enforce (MTA-STS) and to the next \
                        DMARC policy, with the evidence and advice.",
                    "parameters": [days_parameter()],
                    "responses": responses(("200", ok("The readiness.", reference("Readiness"))),
                        &[INVALID, NOT_FOUND])
                }
            },
            "/api/v1/reports": {
                "get": {
                    "summary": "The received reports the token may see, newest first, a page at \
                        a time.",
                    "description": "A tenant sees the reports naming one of its domains; an \
                        administrator sees every report (with domain: that domain's).",
                    "parameters": page_parameters().as_array().into_iter().flatten().cloned()
                        .chain([
                            json!({"name": "domain", "in": "query", "required": false,
                                "description": "Only reports about this domain (one the token sees).",
                                "schema": {"type": "string"}}),
                            kind_parameter(),
                        ]).collect::<Vec<Value>>(),
                    "responses": responses(("200", ok("A page of reports.",
                        page_of("reports", reference("ReportSummary")))), &[INVALID, NOT_FOUND])
                }
            },
            "/api/v1/reports/{id}": {
                "parameters": report_parameter(),
                "get": {
                    "summary": "One report: its summary, the normalized report and its document.",
                    "responses": responses(("200", ok("The report.", reference("ReportDetail"))),
                        &[REPORT_NOT_FOUND])
                }
            },
            "/api/v1/reports/{id}/raw": {
                "parameters": report_parameter(),
                "get": {
                    "summary": "The report's document as received, decompressed.",
                    "description": "application/tlsrpt+json for TLS reports, application/xml for \
                        DMARC reports; served as an attachment.",
                    "responses": responses(("200", json!({
                        "description": "The document.",
                        "content": {
                            "application/tlsrpt+json": {"schema": {"type": "string"}},
                            "application/xml": {"schema": {"type": "string"}}
                        }
                    })), &[REPORT_NOT_FOUND])
                }
            },
            "/api/v1/health": {
                "get": {
                    "summary": "Every domain the token sees with its last 30 days at a glance.",
                    "responses": responses(("200", ok("The overview.", json!({
                        "type": "object", "required": ["window", "domains"],
                        "properties": {
                            "window": {"type": "integer"},
                            "domains": {"type": "array", "items": reference("DomainHealth")}
                        }
                    }))), &[])
                }
            },
            "/api/v1/admin/reports/unowned": {
                "get": {
                    "summary": "Reports none of whose domains is hosted here (administrators).",
                    "description": "A page looks at 5,000 reports at most; it may come back \
                        short with a next_cursor to continue.",
                    "parameters": page_parameters().as_array().into_iter().flatten().cloned()
                        .chain([kind_parameter()]).collect::<Vec<Value>>(),
                    "responses": responses(("200", ok("A page of reports.",
                        page_of("reports", reference("ReportSummary")))), &[INVALID, ADMIN_ONLY])
                }
            },
            "/api/v1/admin/mail": {
                "get": {
                    "summary": "Received mail that held no report (administrators).",
                    "description": "The newest 100 messages the SMTP intake accepted in which no \
                        TLS or DMARC report could be read, newest first, with how each arrived \
                        (client, envelope, TLS, DKIM results) and the errors of its parts.",
                    "responses": responses(("200", ok("The messages.", json!({
                        "type": "object", "required": ["mail"],
                        "properties": {"mail": {"type": "array", "items": mail_schema()}}
                    }))), &[ADMIN_ONLY])
                }
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "An API token: mtasts_ followed by 43 base64url characters."}
            },
            "schemas": schemas()
        }
    })
}

fn schemas() -> Value {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let seconds = json!({"type": "integer", "minimum": 1, "maximum": 31_557_600});
    let unix = json!({"type": "integer", "description": "Unix seconds."});
    let nullable_unix = json!({"type": ["integer", "null"], "description": "Unix seconds."});
    let nullable_string = json!({"type": ["string", "null"]});
    let mode = json!({"type": "string", "enum": ["enforce", "testing", "none"]});
    let tenant_role = json!({"type": "string", "enum": ["owner", "readonly"]});
    let rua = json!({"type": "string", "maxLength": 1024,
        "examples": ["mailto:tlsrpt@example.com", "mailto:tlsrpt@example.com,https://reports.example.com/v1"],
        "description": "The owner's own TLS-RPT report address (the rua= value, RFC 8460 §3): \
            1 to 4 comma-separated mailto: or https: URIs. The service answers \
            _smtp._tls.<domain>.t<tenant>.<zone> with v=TLSRPTv1; rua= its own URIs (unless \
            reports_to_service is false) and these."});
    let reports_to_service = json!({"type": "boolean",
        "description": "Whether the published TLS-RPT rua names the service's own report \
            addresses (its mailbox and HTTPS intake) besides the owner's rua. Default true."});
    let mut all = json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "examples": ["invalid", "bad_request", "unauthorized",
                        "forbidden", "not_found", "conflict", "busy", "payload_too_large",
                        "rate_limited", "unavailable"]},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "The request field at fault (400)."},
                    "rule": {"type": "string", "description": "The rule it breaks (400)."}
                }
            }}
        },
        "Me": {
            "type": "object", "required": ["role", "tenant"],
            "properties": {
                "role": {"type": "string", "enum": ["admin", "owner", "readonly"]},
                "tenant": nullable_string
            }
        },
        "CreateDomain": {
            "type": "object", "additionalProperties": false, "required": ["domain", "mode"],
            "properties": {
                "domain": {"type": "string"},
                "tenant": {"type": "string", "description": "Required for administrators."},
                "mode": mode,
                "mx": {"type": "array", "items": {"type": "string"}, "maxItems": 64,
                    "description": "Omitted: the domain's MX host names."},
                "max_age": {"type": "integer", "minimum": 1, "maximum": 31_557_600,
                    "description": "Default 604800 (one week)."},
                "rua": rua,
                "reports_to_service": reports_to_service
            }
        },
        "UpdateDomain": {
            "type": "object", "additionalProperties": false, "minProperties": 1,
            "properties": {
                "mode": mode, "mx": strings, "max_age": seconds,
                "rua": {"type": ["string", "null"], "maxLength": 1024,
                    "description": "A string sets the TLS-RPT report address, null removes it, \
                        absent keeps it."},
                "reports_to_service": reports_to_service
            }
        },
        "DomainDetail": {
            "type": "object",
            "required": ["domain", "tenant", "state", "mode", "mx", "max_age", "policy",
                "policy_id", "pending_policy_id", "version", "rua", "reports_to_service",
                "reports", "records", "certificate", "verification", "remove_after",
                "created_at"],
            "properties": {
                "domain": {"type": "string"},
                "tenant": {"type": "string"},
                "state": {"type": "string", "enum": ["active", "removing"]},
                "mode": mode,
                "mx": strings,
                "max_age": {"type": "integer"},
                "policy": {"type": "string", "description": "The policy body (CRLF) served now."},
                "policy_id": {"type": ["string", "null"],
                    "description": "The id in the _mta-sts TXT record; null until published."},
                "pending_policy_id": {"type": ["string", "null"],
                    "description": "The newest version's id while it waits to be published."},
                "version": {"type": "integer"},
                "rua": {"type": ["string", "null"],
                    "description": "The owner's own TLS-RPT report address; null when none."},
                "reports_to_service": reports_to_service,
                "reports": reference("Reports"),
                "records": {"type": "array", "items": reference("Record"),
                    "description": "The CNAMEs to publish; tlsrpt only when reports.tlsrpt_rua is set."},
                "certificate": reference("Certificate"),
                "verification": {"type": ["object", "null"],
                    "description": "The last verification: checked_at, records (per kind a status, detail and fix), points_here, and check (the checker's verdict and findings, null until the policy host points here)."},
                "remove_after": nullable_unix,
                "created_at": unix
            }
        },
        "Reports": {
            "type": "object", "required": ["tlsrpt_rua", "dmarc_rua", "dmarc_authorization"],
            "properties": {
                "tlsrpt_rua": {"type": ["string", "null"],
                    "description": "The rua= value published at _smtp._tls.<domain> (through the \
                        CNAME); null: no TLS-RPT record."},
                "dmarc_rua": {"type": "string",
                    "examples": ["mailto:dmarc@reports.mta-sts.provider.example"],
                    "description": "The URI to add to the rua= of the owner's _dmarc.<domain> \
                        record to have DMARC aggregate reports sent to the service."},
                "dmarc_authorization": {"type": "string",
                    "description": "<domain>._report._dmarc.reports.<zone>: where the service \
                        publishes TXT v=DMARC1, authorizing itself as the domain's external \
                        report destination (RFC 7489 §7.1)."}
            }
        },
        "Record": {
            "type": "object",
            "required": ["kind", "name", "type", "target", "status", "detail", "fix"],
            "properties": {
                "kind": {"type": "string", "enum": ["sts_record", "policy_host", "tlsrpt"]},
                "name": {"type": "string"},
                "type": {"const": "CNAME"},
                "target": {"type": "string"},
                "status": {"type": "string", "enum": ["verified", "missing", "wrong", "unchecked"]},
                "detail": nullable_string,
                "fix": nullable_string
            }
        },
        "Certificate": {
            "type": "object", "required": ["status", "not_after"],
            "properties": {
                "status": {"type": "string", "enum": ["none", "valid", "expiring", "expired"]},
                "not_after": nullable_unix
            }
        },
        "Version": {
            "type": "object",
            "required": ["version", "policy_id", "mode", "mx", "max_age", "created_at", "published_at"],
            "properties": {
                "version": {"type": "integer"},
                "policy_id": {"type": "string"},
                "mode": mode,
                "mx": strings,
                "max_age": {"type": "integer"},
                "created_at": unix,
                "published_at": nullable_unix
            }
        },
        "Claim": {
            "type": "object", "required": ["domain", "txt_name", "txt_value", "expires_at"],
            "properties": {
                "domain": {"type": "string"},
                "txt_name": {"type": "string", "examples": ["_mtasts-claim.example.com"]},
                "txt_value": {"type": "string",
                    "examples": ["mtasts-claim=0123456789abcdef0123456789abcdef"]},
                "expires_at": unix
            }
        },
        "ClaimBody": {
            "type": "object", "additionalProperties": false,
            "properties": {"tenant": {"type": "string",
                "description": "Administrators: the claiming tenant."}}
        },
        "Tenant": {
            "type": "object", "required": ["name", "created_at"],
            "properties": {"name": {"type": "string"}, "created_at": unix}
        },
        "CreateTenant": {
            "type": "object", "additionalProperties": false, "required": ["name"],
            "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"}}
        },
        "CreateToken": {
            "type": "object", "additionalProperties": false, "required": ["role", "label"],
            "properties": {"role": tenant_role, "label": {"type": "string", "maxLength": 100},
                "expires_in_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 3650,
                    "description": "Days until the token stops working; absent or null: never."}}
        },
        "NewToken": {
            "type": "object", "required": ["id", "tenant", "role", "label", "expires_at", "token"],
            "properties": {
                "id": {"type": "integer"}, "tenant": {"type": "string"}, "role": tenant_role,
                "label": {"type": "string"},
                "expires_at": {"type": ["integer", "null"],
                    "description": "Unix seconds from which the token is refused; null: never."},
                "token": {"type": "string", "description": "Shown once; only its hash is stored."}
            }
        },
        "Token": {
            "type": "object",
            "required": ["id", "tenant", "role", "label", "created_at", "expires_at", "last_used"],
            "properties": {
                "id": {"type": "integer"},
                "tenant": {"type": ["string", "null"], "description": "null: an administrator token."},
                "role": {"type": "string", "enum": ["admin", "owner", "readonly"]},
                "label": {"type": "string"},
                "created_at": unix,
                "expires_at": {"type": ["integer", "null"],
                    "description": "Unix seconds from which the token is refused; null: never."},
                "last_used": {"type": ["integer", "null"],
                    "description": "Unix seconds of the last use (recorded at most once a minute); null: never used."}
            }
        },
        "CreateUser": {
            "type": "object", "additionalProperties": false,
            "required": ["email", "password", "role"],
            "properties": {
                "email": {"type": "string"},
                "password": {"type": "string", "minLength": 12, "maxLength": 1024},
                "role": tenant_role
            }
        },
        "User": {
            "type": "object", "required": ["id", "tenant", "email", "role"],
            "properties": {
                "id": {"type": "integer"}, "tenant": {"type": "string"},
                "email": {"type": "string"}, "role": tenant_role
            }
        }
    });
    if let (Some(all), Value::Object(more)) = (all.as_object_mut(), report_schemas()) {
        all.extend(more);
    }
    all
}

/// The schemas of the report routes (`crate::service::reports`).
fn report_schemas() -> Value {
    let count = json!({"type": "object", "required": ["label", "count"],
        "properties": {"label": {"type": "string"}, "count": {"type": "integer"}}});
    let counts = json!({"type": "array", "items": count,
        "description": "Largest first; the label unknown when the sender named none."});
    let level = json!({"type": "string",
        "enum": ["enforced", "fix", "no-data", "ready", "review", "wait"]});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let unix = json!({"type": "integer", "description": "Unix seconds."});
    let window = json!({"type": "integer", "enum": [30, 90, 365]});
    let source = json!({
        "type": "object",
        "required": ["source_ip", "header_from", "messages", "spf_aligned", "dkim_aligned",
            "pass", "if_quarantine", "if_reject"],
        "properties": {
            "source_ip": {"type": "string"}, "header_from": {"type": "string"},
            "messages": {"type": "integer"}, "spf_aligned": {"type": "integer"},
            "dkim_aligned": {"type": "integer"}, "pass": {"type": "integer"},
            "if_quarantine": {"type": "integer",
                "description": "Failing messages p=quarantine would send to spam (pct=100)."},
            "if_reject": {"type": "integer",
                "description": "Failing messages p=reject would refuse (pct=100)."}
        }
    });
    json!({
        "ReportSummary": {
            "type": "object",
            "required": ["id", "kind", "organization", "report_id", "domains", "begin", "end",
                "received_at", "source", "duplicates", "success", "failure"],
            "properties": {
                "id": {"type": "integer"},
                "kind": {"type": "string", "enum": ["tlsrpt", "dmarc"]},
                "organization": {"type": "string"},
                "report_id": {"type": "string"},
                "domains": strings,
                "begin": unix, "end": unix, "received_at": unix,
                "source": {"type": "string", "description": "Where it first arrived."},
                "duplicates": {"type": "integer",
                    "description": "How many more times it arrived (counted once)."},
                "success": {"type": "integer",
                    "description": "TLS: successful sessions; DMARC: messages passing DMARC."},
                "failure": {"type": "integer",
                    "description": "TLS: failed sessions; DMARC: messages failing DMARC."}
            }
        },
        "ReportDetail": {
            "type": "object",
            "required": ["summary", "report", "raw", "raw_content_type", "arrivals"],
            "properties": {
                "summary": reference("ReportSummary"),
                "report": {"type": "object",
                    "description": "The normalized report (the output contract of mtasts report)."},
                "raw": {"type": ["string", "null"],
                    "description": "The document as received; null when it is not UTF-8 (see /raw)."},
                "raw_content_type": {"type": "string",
                    "enum": ["application/tlsrpt+json", "application/xml"]},
                "arrivals": {"type": "array", "items": arrival_schema(),
                    "description": "Each delivery of the report by mail, oldest first, with its \
                        DKIM results; empty for reports posted over HTTPS or imported."}
            }
        },
        "TlsView": {
            "type": "object",
            "required": ["domain", "window", "days", "success", "failure", "by_result", "by_mx",
                "by_receiving_ip", "by_organization", "by_sending_ip", "reports"],
            "properties": {
                "domain": {"type": "string"}, "window": window,
                "days": {"type": "array", "description": "Every day of the window, oldest first.",
                    "items": {"type": "object", "required": ["day", "success", "failure"],
                        "properties": {"day": unix, "success": {"type": "integer"},
                            "failure": {"type": "integer"}}}},
                "success": {"type": "integer"}, "failure": {"type": "integer"},
                "by_result": counts, "by_mx": counts, "by_receiving_ip": counts,
                "by_sending_ip": counts,
                "by_organization": {"type": "array", "items": {"type": "object",
                    "required": ["organization", "reports", "success", "failure"],
                    "properties": {"organization": {"type": "string"},
                        "reports": {"type": "integer"}, "success": {"type": "integer"},
                        "failure": {"type": "integer"}}}},
                "reports": {"type": "array", "items": reference("ReportSummary"),
                    "description": "The newest 100."}
            }
        },
        "DmarcView": {
            "type": "object",
            "required": ["domain", "window", "days", "messages", "pass", "published_p",
                "sources", "reports"],
            "properties": {
                "domain": {"type": "string"}, "window": window,
                "days": {"type": "array", "description": "Every day of the window, oldest first.",
                    "items": {"type": "object",
                        "required": ["day", "messages", "pass", "none", "quarantine", "reject"],
                        "properties": {"day": unix, "messages": {"type": "integer"},
                            "pass": {"type": "integer"}, "none": {"type": "integer"},
                            "quarantine": {"type": "integer"}, "reject": {"type": "integer"}}}},
                "messages": {"type": "integer"}, "pass": {"type": "integer"},
                "published_p": {"type": ["string", "null"]},
                "sources": {"type": "array", "items": source.clone(),
                    "description": "Most failing messages first."},
                "reports": {"type": "array", "items": reference("ReportSummary"),
                    "description": "The newest 100."}
            }
        },
        "Readiness": {
            "type": "object", "required": ["domain", "window", "tls", "dmarc"],
            "properties": {
                "domain": {"type": "string"}, "window": window,
                "tls": {"type": ["object", "null"],
                    "required": ["mode", "reports", "organizations", "days", "failures",
                        "failures_by_type", "level", "headline", "advice", "enforce_safe"],
                    "properties": {
                        "mode": {"type": "string"}, "reports": {"type": "integer"},
                        "organizations": {"type": "integer"}, "days": {"type": "integer"},
                        "failures": {"type": "integer"}, "failures_by_type": counts.clone(),
                        "level": level.clone(), "headline": {"type": "string"},
                        "advice": strings.clone(),
                        "enforce_safe": {"type": "boolean",
                            "description": "testing now, and the reports say enforce is safe."}
                    }},
                "dmarc": {"type": ["object", "null"],
                    "description": "null until a DMARC report about the domain arrived in the window.",
                    "required": ["published_p", "next_step", "level", "headline", "advice", "hurt"],
                    "properties": {
                        "published_p": {"type": ["string", "null"]},
                        "next_step": {"type": ["string", "null"], "enum": ["quarantine", "reject", null]},
                        "level": level.clone(), "headline": {"type": "string"},
                        "advice": strings,
                        "hurt": {"type": "array", "items": source,
                            "description": "The sources the next step would hurt."}
                    }}
            }
        },
        "DomainHealth": {
            "type": "object",
            "required": ["domain", "mode", "tls_success", "tls_failure", "dmarc_messages",
                "dmarc_pass", "last_report_at", "level", "headline"],
            "properties": {
                "domain": {"type": "string"}, "mode": {"type": "string"},
                "tls_success": {"type": "integer"}, "tls_failure": {"type": "integer"},
                "dmarc_messages": {"type": "integer"}, "dmarc_pass": {"type": "integer"},
                "last_report_at": {"type": ["integer", "null"], "description": "Unix seconds."},
                "level": level, "headline": {"type": "string"}
            }
        }
    })
}

/// One message of `GET /api/v1/admin/mail` (built apart: one `json!` this deep exceeds the
/// macro recursion limit).
/// One delivery by mail: client, envelope, TLS and DKIM results.
fn arrival_schema() -> Value {
    let tls = json!({"type": ["object", "null"], "properties": {
        "version": {"type": "string"}, "cipher": {"type": ["string", "null"]}}});
    json!({
        "type": "object",
        "required": ["arrival", "input", "received_at", "channel", "peer_ip", "helo",
            "mail_from", "recipients", "tls", "dkim"],
        "properties": {
            "arrival": {"type": "integer"},
            "input": {"type": "integer"},
            "received_at": {"type": "integer", "description": "Unix seconds."},
            "channel": {"type": "string"},
            "peer_ip": {"type": "string"},
            "helo": {"type": "string"},
            "mail_from": {"type": "string"},
            "recipients": {"type": "array", "items": {"type": "string"}},
            "tls": tls,
            "dkim": {"type": "array", "items": {"type": "object"},
                "description": "One object per DKIM signature: domain, selector, result, reason."}
        }
    })
}

fn mail_schema() -> Value {
    let error = json!({"type": "object", "properties": {
        "source": {"type": "string"}, "code": {"type": "string"}, "message": {"type": "string"}}});
    let mut schema = arrival_schema();
    schema["required"]
        .as_array_mut()
        .expect("required is an array")
        .push("errors".into());
    schema["properties"]["errors"] = json!({"type": "array", "items": error});
    schema
}
