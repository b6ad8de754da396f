"""A QuickBooks Online emulator (OAuth 2.0 + a v3 Accounting API subset) for qbsync's tests.

Usage::

    with QboEmulator() as emu:                      # werkzeug server in a thread on 127.0.0.1:<free port>
        realm = emu.add_company(name="Acme")
        auth = AuthClient(emu.client_id, emu.client_secret, redirect_uri, environment=emu.discovery_url)
        # GET auth.get_authorization_url(...) → 302 to redirect_uri?code=…&state=…&realmId=…
        # API: f"{emu.api_base_url}/v3/company/{realm}/customer?minorversion=75"
        emu.faults.fail_after_commit_5xx = 1; emu.set_limits(); emu.company(realm).entities["Customer"]

Endpoints: ``/.well-known/openid-configuration``, ``/authorize`` (auto-consent; realm = ``realmId`` query
parameter, else ``emu.authorize_realm``, else the first company, else a new one), ``/token``, ``/revoke``,
``/userinfo``, ``/jwks``; ``/v3/company/{realm}/{entity}[/{id}]``, ``/query`` (GET or POST), ``/batch``, ``/cdc``.

Choices worth knowing (see the modules for details):

* every refresh rotates the refresh token; the old one is dead at once (``emu.refresh_grace_seconds`` relaxes it);
* ``faults.fail_next = [429, 503]`` answers the next API calls with those statuses before doing anything;
  ``expire_access_tokens_now()`` ages every issued access token out at once (an hour passing mid-batch);
* ``requestid`` replays (per realm) return the stored success byte-for-byte; faults are not remembered unless
  ``faults.replay_errors``; a replay does not consume ``fail_after_commit_5xx``;
* limits are off until ``set_limits()``; 429 bodies are XML unless ``faults.throttle_xml = False``;
* faults are XML when ``Accept`` asks for XML only, or when ``faults.xml_faults``; 401/403 use Intuit's lower-case
  ``fault``/``error`` body; everything carries an ``intuit_tid`` header;
* times are rendered at a fixed UTC-08:00 offset.

Guessed error codes are marked in ``errors.py``.
"""

from infra.qbo_emulator.errors import DUPLICATE_DOC_NUMBER_CODE, QboFault
from infra.qbo_emulator.server import QboEmulator
from infra.qbo_emulator.state import CompanyState, Faults, Limits

__all__ = ["DUPLICATE_DOC_NUMBER_CODE", "CompanyState", "Faults", "Limits", "QboEmulator", "QboFault"]
