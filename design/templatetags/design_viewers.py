from django import template

from design.viewers import docking_spec

register = template.Library()


@register.simple_tag
def docking_viewer_spec(job):
    return docking_spec(job)
