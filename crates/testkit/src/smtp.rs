//! SMTP MX hosts with STARTTLS and faults.
