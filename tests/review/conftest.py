"""Provides the review tests' fixtures: role groups, staff members and a campaign in review."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from campaigns.services import campaign_launch
from review.roles import apply_roles
from tests.factories import campaign_with_briefs

PASSWORD = "Review-queue-2026!"


@pytest.fixture
def roles(db):
    # Transactional tests empty the tables between tests, data-migration rows included.
    apply_roles(Group=Group, Permission=Permission)


@pytest.fixture
def member(roles, django_user_model):
    """member(role, username) → a staff user in that role's group."""

    def make(role: str, username: str):
        user = django_user_model.objects.create_user(
            username, f"{username}@example.com", PASSWORD, is_staff=True
        )
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def client_for():
    """client_for(user) → a test client logged in as that user."""

    def make(user, **kwargs):
        client = Client(**kwargs)
        client.force_login(user)
        return client

    return make


@pytest.fixture
def in_review(queue):
    """in_review(count) → a campaign whose briefs all wait in the review queue."""

    def make(count=2, **kwargs):
        campaign = campaign_with_briefs(count=count, **kwargs)
        campaign_launch(campaign=campaign)
        queue.run()
        return campaign

    return make
