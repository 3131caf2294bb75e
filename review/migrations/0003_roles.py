"""Creates the four roles as groups with their permissions."""

from django.db import migrations


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    from review.roles import apply_roles

    # Permissions are normally made after the last migration; make them now so the groups can
    # hold them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    apply_roles(
        Group=apps.get_model("auth", "Group"),
        Permission=apps.get_model("auth", "Permission"),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("assets", "0003_audit_events_thumbnails_fingerprints"),
        ("campaigns", "0003_format_layouts"),
        ("generation", "0005_regeneration"),
        ("review", "0002_gate_rules_claims_audit_moved"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
