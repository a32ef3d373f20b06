"""Give every new user a profile and a personal lab."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils.text import slugify

from .models import Lab, Membership, Profile


def unique_lab_slug(base: str) -> str:
    base = slugify(base)[:120] or "lab"
    slug, n = base, 1
    while Lab.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_profile_and_lab(sender, instance, created, **kwargs):
    if not created:
        return
    label = instance.email or instance.username
    lab = Lab.objects.create(
        name=f"{label} (personal)",
        slug=unique_lab_slug(label.split("@")[0] + "-personal"),
        cpu_hours_per_month=settings.BIOFM_DEFAULT_LAB_CPU_HOURS,
        gpu_hours_per_month=settings.BIOFM_DEFAULT_LAB_GPU_HOURS,
    )
    Membership.objects.create(lab=lab, user=instance, role=Membership.Role.OWNER)
    Profile.objects.create(user=instance, default_lab=lab)
