# python manage.py shell < show_sessions.py
from scs_django.models import Session

for row in Session.objects.order_by("-last_seen"):
    data = bytes(row.data)
    print(f"session {row.key_hash[:8]}: user {row.user_id}, ends {row.expiry:%H:%M}")
    print(f"  data: {data[:16].hex()}... ({len(data)} bytes)")
    print(f"  readable without the key: {b'_auth_user_id' in data}")
