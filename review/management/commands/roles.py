"""Provides `manage.py roles`: bring the four role groups back to their permission lists."""

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand

from review.roles import ROLES, apply_roles


class Command(BaseCommand):
    help = "Create or update the Marketing, Creative editor, Publisher and Admin groups."

    def handle(self, *args, **options):
        apply_roles(Group=Group, Permission=Permission)
        for name in ROLES:
            count = Group.objects.get(name=name).permissions.count()
            self.stdout.write(f"{name}: {count} permissions")
