# python3 -m seed.create_users N PASSWORD: users bench-0 … bench-(N-1), hashed by Django's default
# hasher (one hash, copied: every user has the same password, as in runway's bench users).
import sys

import django

django.setup()
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402

count, password = int(sys.argv[1]), sys.argv[2]
hashed = make_password(password)
User.objects.bulk_create([User(username=f"bench-{i}", password=hashed) for i in range(count)])
print(hashed.split("$")[0] + "$" + hashed.split("$")[1])
